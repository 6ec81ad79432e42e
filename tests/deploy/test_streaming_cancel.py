"""A client that goes away mid-stream cancels its generation; the turn is still logged."""

from __future__ import annotations

import json
import time

from agent.generator import ScriptedGenerator
from tests.deploy.conftest import FILTER_QUESTION, wait_until


def test_disconnect_mid_stream_cancels_generation_and_logs_the_partial_turn(make_api) -> None:
    generator = ScriptedGenerator()
    generator.delay_s = 0.05
    long_answer = " ".join(["Replace the HEPA filter every 6 months."] * 40)  # 280 words: ~14 s
    generator.enqueue(long_answer)
    api = make_api(generator)
    started = time.monotonic()
    with api.http(api.customer("shop")) as http:
        body = {
            "model": "production",
            "messages": [{"role": "user", "content": FILTER_QUESTION}],
            "stream": True,
        }
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            cid = response.headers["x-conversation-id"]
            for line in response.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                    break  # the first words arrived: hang up
    turns = wait_until(lambda: (t := api.store.turns(cid)) and len(t) == 2 and t, timeout=10)
    assert time.monotonic() - started < 8
    assert turns[1].role == "agent" and 0 < len(turns[1].text) < len(long_answer)
    with api.http() as http:
        wait_until(lambda: "supportloop_active_streams 0" in http.get("/metrics").text)
