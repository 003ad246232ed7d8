"""What the gateway sends the backend, and reports in the Response, for a setting the client left out.

One per backend, made once from its config (`backends[].sampling_defaults`,
`backends[].strict_tools_default`): the Response states what the backend was told (docs/API.md,
"What a Response reports").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Defaults:
    temperature: float = 1.0
    top_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    strict_tools: bool = True  # `strict` of a function tool that omits it


OPENAI_DEFAULTS = Defaults()  # OpenAI's own, the config's defaults too
