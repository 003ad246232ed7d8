"""Codex CLI's remote compaction against the gateway. Codex compacts remotely only with a provider it
takes for OpenAI (its `name` is "openai", any case; or Azure): then, once the context passes
`model_auto_compact_token_limit`, it sends an ordinary streamed `POST /v1/responses` whose last
input item is `{"type": "compaction_trigger"}` and expects exactly one `compaction` output item
(`response.output_item.done`) before `response.completed`; later turns carry that item as input.
With any other provider name Codex compacts locally (an ordinary turn with its own prompt)."""

from __future__ import annotations

from responses_gateway.translate.compaction import RESTORED_PREFIX, SUMMARY_PROMPT
from tests.support.echo_fixtures import EchoBackend
from tests.tools.test_codex import Codex, _ok, codex  # noqa: F401  (the fixture)


def test_remote_compaction_with_a_provider_named_openai(codex: Codex, echo: EchoBackend) -> None:  # noqa: F811
    config = codex.home / ".codex" / "config.toml"
    text = config.read_text().replace('name = "Gateway"', 'name = "OpenAI"')
    config.write_text("model_auto_compact_token_limit = 50\n" + text)
    assert _ok(codex.exec("Say hi")) == "echo: Say hi"
    done = codex.exec("resume", "--last", "again please")
    assert _ok(done) == "echo: again please"
    assert "context compacted" in done.stderr
    turn, summarising, after = (r["body"]["messages"] for r in echo.chat_requests())
    # the compaction turn: the first turn's context, its answer, then our prompt (no tools offered)
    assert summarising[-1] == {"role": "user", "content": SUMMARY_PROMPT}
    assert {"role": "assistant", "content": "echo: Say hi"} in summarising
    assert summarising[: len(turn)] == turn
    # the next turn starts from the compaction item: the summary restored, then the new prompt
    restored = [m for m in after if m["role"] == "user" and str(m["content"]).startswith(RESTORED_PREFIX)]
    assert [m["content"] for m in restored] == [RESTORED_PREFIX + "echo: " + SUMMARY_PROMPT]
    assert after[-1] == {"role": "user", "content": "again please"}
    assert {"role": "assistant", "content": "echo: Say hi"} not in after
