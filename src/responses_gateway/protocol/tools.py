"""Tools and tool_choice of a create request: function, namespace, custom, tool_search, hosted.

Hosted tools (web_search, file_search, …) are accepted as classes of their own so that the gateway
can leave them out of the backend request (or reject them, by config) rather than fail to parse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from msgspec import Meta, Struct, defstruct

HOSTED_TOOL_TYPES = (
    "web_search",
    "web_search_preview",
    "web_search_2025_08_26",
    "web_search_preview_2025_03_11",
    "file_search",
    "code_interpreter",
    "image_generation",
    "mcp",
    "computer",
    "computer_use",
    "computer_use_preview",
    "local_shell",
    "shell",
    "apply_patch",
)


Name = Annotated[str, Meta(min_length=1)]


class _Tool(Struct, tag_field="type", omit_defaults=True):
    pass


class FunctionTool(_Tool, tag="function", omit_defaults=False):
    """Encoded with every key (null when unset): the spec's FunctionTool requires them all."""

    name: Name
    description: str | None = None
    parameters: dict[str, Any] | None = None  # open: a JSON schema
    strict: bool | None = None


class NamespaceFunction(Struct, omit_defaults=True):
    name: Name
    type: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None  # open: a JSON schema
    strict: bool | None = None


class NamespaceTool(_Tool, tag="namespace"):
    name: Name
    description: str | None = None
    tools: list[NamespaceFunction] | None = None


class CustomFormat(Struct, omit_defaults=True):
    type: str
    syntax: str | None = None
    definition: str | None = None


class CustomTool(_Tool, tag="custom"):
    name: Name
    description: str | None = None
    format: CustomFormat | None = None


class ToolSearchTool(_Tool, tag="tool_search"):
    execution: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None  # open: a JSON schema


class HostedTool(_Tool):
    """A tool OpenAI runs (its configuration is not kept: the gateway never runs it)."""


class ToolChoiceFunction(Struct, tag_field="type", tag="function", omit_defaults=True):
    name: str
    namespace: str | None = None


class ToolChoiceCustom(Struct, tag_field="type", tag="custom", omit_defaults=True):
    name: str


class ToolChoiceAllowed(Struct, tag_field="type", tag="allowed_tools", omit_defaults=True):
    mode: Literal["auto", "required"] = "auto"
    tools: list[dict[str, Any]] | None = None  # open: references to tools by type and name


class HostedToolChoice(Struct, tag_field="type"):
    """Forces a hosted tool; the backend never sees it, so it means `auto` there."""


def _hosted(base: type[Struct], suffix: str) -> tuple[type[Struct], ...]:
    return tuple(
        defstruct(f"{t.title().replace('_', '')}{suffix}", [], bases=(base,), tag=t)
        for t in HOSTED_TOOL_TYPES
    )


_HOSTED_TOOLS = _hosted(HostedTool, "Tool")
_HOSTED_CHOICES = _hosted(HostedToolChoice, "Choice")

if TYPE_CHECKING:
    Tool = FunctionTool | NamespaceTool | CustomTool | ToolSearchTool | HostedTool
    ToolChoice = (
        Literal["auto", "none", "required"]
        | ToolChoiceFunction
        | ToolChoiceCustom
        | ToolChoiceAllowed
        | HostedToolChoice
    )
else:
    Tool = Union[(FunctionTool, NamespaceTool, CustomTool, ToolSearchTool, *_HOSTED_TOOLS)]
    ToolChoice = Union[
        (
            Literal["auto", "none", "required"],
            ToolChoiceFunction,
            ToolChoiceCustom,
            ToolChoiceAllowed,
            *_HOSTED_CHOICES,
        )
    ]


def tool_type(tool: Struct) -> str:
    """The `type` tag of a tool or tool choice."""
    return str(type(tool).__struct_config__.tag)
