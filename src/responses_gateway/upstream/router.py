"""Model name → backend: an explicit name wins, then the first backend that serves "*"."""

from __future__ import annotations

from collections.abc import Sequence

from responses_gateway.config import BackendSettings
from responses_gateway.errors import NotFound
from responses_gateway.protocol.errors import shown

WILDCARD = "*"


class ModelRouter:
    """Looks backends up by model name in one dict, built once from the config."""

    __slots__ = ("_by_model", "_fallback", "backends")

    def __init__(self, backends: Sequence[BackendSettings]) -> None:
        self.backends = tuple(backends)
        self._by_model: dict[str, BackendSettings] = {}
        self._fallback: BackendSettings | None = None
        for backend in self.backends:
            for name in backend.models:
                if name == WILDCARD:
                    self._fallback = self._fallback or backend
                else:
                    self._by_model.setdefault(name, backend)

    def backend_for(self, model: str) -> BackendSettings:
        """The first backend listing `model`, else the first with "*"; `NotFound` otherwise."""
        backend = self._by_model.get(model, self._fallback)
        if backend is None:
            raise NotFound(
                f"The model '{shown(model)}' does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        return backend

    def configured_models(self) -> list[tuple[str, BackendSettings]]:
        """Every model named explicitly in the config, with the backend that serves it."""
        return list(self._by_model.items())
