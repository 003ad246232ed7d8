"""The Response object: every key the Open Responses schema requires, filled from the request."""

from __future__ import annotations

from typing import Any

Response = dict[str, Any]


def new_response(req: dict[str, Any], response_id: str, created_at: int) -> Response:
    """The `in_progress` snapshot of a response, echoing the request's settings."""
    text = req.get("text") or {}
    text_out: dict[str, Any] = {"format": text.get("format") or {"type": "text"}}
    if text.get("verbosity") is not None:
        text_out["verbosity"] = text["verbosity"]
    reasoning = req.get("reasoning")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "completed_at": None,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": req.get("instructions"),
        "max_output_tokens": req.get("max_output_tokens"),
        "max_tool_calls": req.get("max_tool_calls"),
        "model": req["model"],
        "output": [],
        "parallel_tool_calls": req.get("parallel_tool_calls", True),
        "previous_response_id": req.get("previous_response_id"),
        "prompt_cache_key": req.get("prompt_cache_key"),
        "prompt_cache_retention": req.get("prompt_cache_retention"),
        "reasoning": {"effort": (reasoning or {}).get("effort"), "summary": (reasoning or {}).get("summary")},
        "safety_identifier": req.get("safety_identifier"),
        "service_tier": req.get("service_tier") or "default",
        "store": req.get("store", True),
        "temperature": req.get("temperature", 1.0) if req.get("temperature") is not None else 1.0,
        "text": text_out,
        "tool_choice": req.get("tool_choice") or "auto",
        "tools": req.get("tools") or [],
        "top_logprobs": req.get("top_logprobs") or 0,
        "top_p": req.get("top_p") if req.get("top_p") is not None else 1.0,
        "truncation": req.get("truncation") or "disabled",
        "presence_penalty": req.get("presence_penalty") or 0.0,
        "frequency_penalty": req.get("frequency_penalty") or 0.0,
        "usage": None,
        "user": req.get("user"),
        "metadata": req.get("metadata") or {},
    }


def map_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat `usage` -> Responses `usage`."""
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }
