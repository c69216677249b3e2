from __future__ import annotations

from pathlib import Path

import pytest

from vidra.cli import main
from vidra.errors import InvalidInput
from vidra.models import ChatRequest, Message, SamplingParams
from vidra.models.scripted import ScriptedChatModel


def test_build_tiny_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "build-tiny", str(tmp_path / "m"), "--size", "xs"]) == 0
    assert "MB" in capsys.readouterr().out
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= names
    assert not any(n.endswith((".bin", ".pt")) for n in names)
    assert main(["model", "build-tiny", str(tmp_path / "x"), "--size", "s", "--seed", "1"]) == 0


def test_scripted_model_replays_per_adapter() -> None:
    m = ScriptedChatModel({"planner": ["p1", "p2"], "base": ["b1"]})
    req = ChatRequest([Message("user", "hi")], adapter="planner")
    assert [c.text for c in m.generate([req, req])] == ["p1", "p2"]
    c = m.generate([ChatRequest([Message("user", "hi")])])[0]
    assert c.text == "b1" and c.token_ids == list(b"b1") and c.logprobs == [0.0, 0.0]
    with pytest.raises(InvalidInput, match="no output #3"):
        m.generate([req])
    n = ScriptedChatModel(lambda r: "x").generate(
        [ChatRequest([Message("user", "q")], sampling=SamplingParams(n=3))]
    )
    assert [c.sample_index for c in n] == [0, 1, 2]
