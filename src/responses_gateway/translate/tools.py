"""Responses tools <-> Chat Completions tools, and the mapping of the backend's calls back.

Chat backends only know `function` tools. `namespace` tools are flattened to functions named
`<namespace>__<name>`; `custom` (freeform) tools become a function with one string argument
`input`; client-executed `tool_search` becomes a function too. Hosted tools the gateway cannot run
(web_search, file_search, …) are left out of what the backend sees (or rejected, by config).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from responses_gateway.errors import InvalidRequest

log = logging.getLogger("responses_gateway.tools")

NS_SEP = "__"
HOSTED_TOOLS = frozenset(
    {
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
    }
)
_CUSTOM_PARAMS = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The raw input for the tool."}},
    "required": ["input"],
    "additionalProperties": False,
}

_KIND = {str: "a string", dict: "an object", list: "an array"}


def _name(tool: dict[str, Any], where: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"Missing required parameter: '{where}.name'.", param=f"{where}.name")
    return name


CallKind = Literal["function_call", "custom_tool_call", "tool_search_call"]


@dataclass(frozen=True, slots=True)
class ToolTarget:
    kind: CallKind
    name: str
    namespace: str | None = None


class ToolMap:
    """The request's tools, as the backend sees them and as the client named them."""

    def __init__(self, tools: list[dict[str, Any]] | None, *, reject_hosted: bool = False) -> None:
        self._chat: list[dict[str, Any]] = []
        self._targets: dict[str, ToolTarget] = {}
        self.dropped: list[str] = []
        for i, tool in enumerate(tools or []):
            self._add(tool, f"tools[{i}]", reject_hosted)
        if self.dropped:
            log.info("hosted tools left out of the backend request: %s", ", ".join(self.dropped))

    def _function(self, name: str, desc: str | None, params: Any, strict: Any, target: ToolTarget) -> None:
        fn: dict[str, Any] = {"name": name, "parameters": params or {"type": "object", "properties": {}}}
        if desc:
            fn["description"] = desc
        if strict is not None:
            fn["strict"] = strict
        self._chat.append({"type": "function", "function": fn})
        self._targets[name] = target

    def _add(self, tool: Any, where: str, reject_hosted: bool) -> None:
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise InvalidRequest(f"Invalid value for '{where}': expected an object with a type.", param=where)
        ttype = tool["type"]
        for key, kind in (("description", str), ("parameters", dict), ("format", dict), ("tools", list)):
            if tool.get(key) is not None and not isinstance(tool[key], kind):
                raise InvalidRequest(
                    f"Invalid type for '{where}.{key}': expected {_KIND[kind]}.", param=f"{where}.{key}"
                )
        if ttype == "function":
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                # the nested Chat shape is a common mistake: say what we expect
                raise InvalidRequest(
                    f"Missing required parameter: '{where}.name' (tools use the flat Responses shape "
                    '{"type": "function", "name": ..., "parameters": ...}).',
                    param=f"{where}.name",
                )
            self._function(
                name,
                tool.get("description"),
                tool.get("parameters"),
                tool.get("strict"),
                ToolTarget("function_call", name),
            )
        elif ttype == "namespace":
            ns = _name(tool, where)
            for j, sub in enumerate(tool.get("tools") or []):
                if not isinstance(sub, dict) or not isinstance(sub.get("name"), str) or not sub["name"]:
                    raise InvalidRequest(f"Invalid value for '{where}.tools[{j}]'.", param=f"{where}.tools")
                for key, kind in (("description", str), ("parameters", dict)):
                    if sub.get(key) is not None and not isinstance(sub[key], kind):
                        raise InvalidRequest(
                            f"Invalid type for '{where}.tools[{j}].{key}': expected {_KIND[kind]}.",
                            param=f"{where}.tools",
                        )
                self._function(
                    f"{ns}{NS_SEP}{sub['name']}",
                    sub.get("description"),
                    sub.get("parameters"),
                    sub.get("strict"),
                    ToolTarget("function_call", str(sub["name"]), ns),
                )
        elif ttype == "custom":
            name = _name(tool, where)
            desc = tool.get("description") or ""
            fmt = tool.get("format") or {}
            if fmt.get("type") == "grammar":
                syntax, definition = fmt.get("syntax", ""), fmt.get("definition", "")
                desc = f"{desc}\n\nThe input must follow this {syntax} grammar:\n{definition}"
            self._function(name, desc.strip(), _CUSTOM_PARAMS, None, ToolTarget("custom_tool_call", name))
        elif ttype == "tool_search" and tool.get("execution") == "client":
            self._function(
                "tool_search",
                tool.get("description"),
                tool.get("parameters"),
                None,
                ToolTarget("tool_search_call", "tool_search"),
            )
        elif ttype in HOSTED_TOOLS or ttype == "tool_search":
            if reject_hosted:
                raise InvalidRequest(
                    f"Tool type '{ttype}' is hosted by OpenAI and cannot be run by this gateway.", param=where
                )
            self.dropped.append(ttype)
        else:
            raise InvalidRequest(f"Unsupported tool type '{ttype}' in '{where}'.", param=where)

    def chat_tools(self) -> list[dict[str, Any]]:
        return self._chat

    def chat_tool_choice(self, choice: Any) -> Any:
        if choice is None or isinstance(choice, str):
            return choice
        ctype = choice.get("type")
        if ctype in ("function", "custom"):
            name, namespace = choice.get("name"), choice.get("namespace")
            if not isinstance(name, str) or not isinstance(namespace, str | None):
                raise InvalidRequest(
                    "Invalid value for 'tool_choice': expected a tool name.", param="tool_choice"
                )
            if namespace:
                name = f"{namespace}{NS_SEP}{name}"
            if name not in self._targets:
                raise InvalidRequest(f"Tool choice '{name}' is not in tools.", param="tool_choice")
            return {"type": "function", "function": {"name": name}}
        if ctype == "allowed_tools":
            return "required" if choice.get("mode") == "required" else "auto"
        return "auto"

    def target(self, chat_name: str) -> ToolTarget:
        """Which client tool a backend call names (unknown names stay plain function calls)."""
        return self._targets.get(chat_name) or ToolTarget("function_call", chat_name)

    def to_chat_call(self, item: dict[str, Any]) -> tuple[str, str]:
        """A stored or client-sent call item -> (chat function name, arguments JSON)."""
        name = str(item.get("name", ""))
        if item.get("namespace"):
            name = f"{item['namespace']}{NS_SEP}{name}"
        if item.get("type") == "custom_tool_call":
            return name, orjson.dumps({"input": item.get("input", "")}).decode()
        if item.get("type") == "tool_search_call":
            return "tool_search", orjson.dumps(item.get("arguments") or {}).decode()
        args = item.get("arguments", "")
        return name, args if isinstance(args, str) else orjson.dumps(args).decode()


def custom_input(arguments: str) -> str:
    """The freeform input of a custom tool call, from the backend's `{"input": ...}` arguments."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    raw = value.get("input") if isinstance(value, dict) else None
    return raw if isinstance(raw, str) else arguments


def parse_arguments(arguments: str) -> Any:
    try:
        return orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
