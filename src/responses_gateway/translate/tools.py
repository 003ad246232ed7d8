"""Responses tools <-> Chat Completions tools, and the mapping of the backend's calls back.

Chat backends only know `function` tools. `namespace` tools are flattened to functions named
`<namespace>__<name>`; `custom` (freeform) tools become a function with one string argument
`input`; client-executed `tool_search` becomes a function too. Hosted tools the gateway cannot run
(web_search, file_search, …) are left out of what the backend sees (or rejected, by config).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import orjson

from responses_gateway.errors import InvalidRequest
from responses_gateway.protocol.chat import (
    ChatFunctionDef,
    ChatFunctionName,
    ChatNamedToolChoice,
    ChatTool,
)
from responses_gateway.protocol.errors import shown
from responses_gateway.protocol.items import CallItem, CustomToolCall, ToolSearchCall
from responses_gateway.protocol.tools import (
    CustomTool,
    FunctionTool,
    HostedTool,
    NamespaceTool,
    Tool,
    ToolChoice,
    ToolChoiceAllowed,
    ToolChoiceCustom,
    ToolChoiceFunction,
    ToolSearchTool,
    tool_type,
)

log = logging.getLogger("responses_gateway.tools")

NS_SEP = "__"
_EMPTY_PARAMS: dict[str, Any] = {"type": "object", "properties": {}}
_CUSTOM_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The raw input for the tool."}},
    "required": ["input"],
    "additionalProperties": False,
}

CallKind = Literal["function_call", "custom_tool_call", "tool_search_call"]


@dataclass(frozen=True, slots=True)
class ToolTarget:
    kind: CallKind
    name: str
    namespace: str | None = None


class ToolMap:
    """The request's tools, as the backend sees them and as the client named them."""

    def __init__(
        self, tools: Sequence[Tool] | None, *, reject_hosted: bool = False, strict_default: bool = True
    ) -> None:
        self.strict_default = strict_default  # `strict` of a function tool that omits it (sent, reported)
        self._chat: list[ChatTool] = []
        self._targets: dict[str, ToolTarget] = {}
        self.dropped: list[str] = []
        for i, tool in enumerate(tools or ()):
            self._add(tool, f"tools[{i}]", reject_hosted)
        if self.dropped:
            log.info("hosted tools left out of the backend request: %s", ", ".join(self.dropped))

    def _function(
        self,
        name: str,
        desc: str | None,
        params: dict[str, Any] | None,
        strict: bool | None,
        target: ToolTarget,
    ) -> None:
        fn = ChatFunctionDef(name, params or _EMPTY_PARAMS, desc or None, strict)
        self._chat.append(ChatTool(fn))
        self._targets[name] = target

    def _add(self, tool: Tool, where: str, reject_hosted: bool) -> None:
        if isinstance(tool, FunctionTool):
            target = ToolTarget("function_call", tool.name)
            strict = self.strict_default if tool.strict is None else tool.strict
            self._function(tool.name, tool.description, tool.parameters, strict, target)
        elif isinstance(tool, NamespaceTool):
            for sub in tool.tools or ():
                target = ToolTarget("function_call", sub.name, tool.name)
                name = f"{tool.name}{NS_SEP}{sub.name}"
                self._function(name, sub.description, sub.parameters, sub.strict, target)
        elif isinstance(tool, CustomTool):
            desc = tool.description or ""
            fmt = tool.format
            if fmt is not None and fmt.type == "grammar":
                grammar = f"The input must follow this {fmt.syntax or ''} grammar:\n{fmt.definition or ''}"
                desc = f"{desc}\n\n{grammar}"
            self._function(
                tool.name, desc.strip(), _CUSTOM_PARAMS, None, ToolTarget("custom_tool_call", tool.name)
            )
        elif isinstance(tool, ToolSearchTool) and tool.execution == "client":
            target = ToolTarget("tool_search_call", "tool_search")
            self._function("tool_search", tool.description, tool.parameters, None, target)
        else:
            assert isinstance(tool, HostedTool | ToolSearchTool)
            ttype = tool_type(tool)
            if reject_hosted:
                raise InvalidRequest(
                    f"Tool type '{ttype}' is hosted by OpenAI and cannot be run by this gateway.", param=where
                )
            self.dropped.append(ttype)

    def chat_tools(self) -> list[ChatTool]:
        return self._chat

    def chat_tool_choice(self, choice: ToolChoice | None) -> str | ChatNamedToolChoice | None:
        """The Chat `tool_choice`; a named tool that is not in `tools` is a 400."""
        if choice is None or isinstance(choice, str):
            return choice
        if isinstance(choice, ToolChoiceFunction | ToolChoiceCustom):
            name = choice.name
            namespace = choice.namespace if isinstance(choice, ToolChoiceFunction) else None
            if namespace:
                name = f"{namespace}{NS_SEP}{name}"
            if name not in self._targets:
                raise InvalidRequest(f"Tool choice '{shown(name)}' is not in tools.", param="tool_choice")
            return ChatNamedToolChoice(ChatFunctionName(name))
        if isinstance(choice, ToolChoiceAllowed):
            return "required" if choice.mode == "required" else "auto"
        return "auto"  # a hosted tool the backend never sees: let it choose

    def target(self, chat_name: str) -> ToolTarget:
        """Which client tool a backend call names (unknown names stay plain function calls)."""
        return self._targets.get(chat_name) or ToolTarget("function_call", chat_name)


def to_chat_call(item: CallItem) -> tuple[str, str]:
    """A stored or client-sent call item -> (chat function name, arguments JSON)."""
    if isinstance(item, CustomToolCall):
        return item.name, orjson.dumps({"input": item.input}).decode()
    if isinstance(item, ToolSearchCall):
        return "tool_search", msgspec.json.encode(item.arguments or {}).decode()
    name = f"{item.namespace}{NS_SEP}{item.name}" if item.namespace else item.name
    return name, item.arguments


def custom_input(arguments: str) -> str:
    """The freeform input of a custom tool call, from the backend's `{"input": ...}` arguments."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    raw = value.get("input") if isinstance(value, dict) else None
    return raw if isinstance(raw, str) else arguments


def parse_arguments(arguments: str) -> Any:
    """Tool-search arguments as JSON (open by nature); `{}` when the model sent none or garbage."""
    try:
        return orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
