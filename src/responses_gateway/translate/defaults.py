"""What the gateway sends the backend, and reports in the Response, for a setting the client left out.

One per backend, made once from its config (`backends[].sampling_defaults`,
`backends[].strict_tools_default`): the Response states what the backend was told (docs/API.md,
"What a Response reports").
"""

from __future__ import annotations

from dataclasses import dataclass

from responses_gateway.protocol.request import CreateRequest


@dataclass(frozen=True, slots=True)
class Defaults:
    temperature: float = 1.0
    top_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    strict_tools: bool = True  # `strict` of a function tool that omits it


OPENAI_DEFAULTS = Defaults()  # OpenAI's own, the config's defaults too


def sampling(req: CreateRequest, d: Defaults) -> tuple[float, float, float, float]:
    """(temperature, top_p, presence_penalty, frequency_penalty): the request's, else `d`'s."""
    return (
        d.temperature if req.temperature is None else req.temperature,
        d.top_p if req.top_p is None else req.top_p,
        d.presence_penalty if req.presence_penalty is None else req.presence_penalty,
        d.frequency_penalty if req.frequency_penalty is None else req.frequency_penalty,
    )
