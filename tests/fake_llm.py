"""A scripted OpenAI-compatible chat endpoint on loopback, for testing inference.py.

The `model` name picks the behaviour, so one stand-in serves every test:
  tools        answers with tool calls that classify (as billing) then close each ticket
  fenced-json  the same actions as ```json fenced text, no tool calls
  garbage      prose that is no action at all
  flaky-429    a 429 on the first request, then behaves like `tools`
  dead-500     a 500 on every request
  no-tools     rejects requests that carry tools (400), then answers in JSON text
  hang         accepts the request and never answers (until the client goes away)
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class FakeLLM:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.complete)

    def next_action(self, prompt: str) -> dict:
        ticket = re.search(r"CURRENT TICKET (\S+)", prompt).group(1)
        if f"classify_ticket({ticket}," in prompt:
            return {"action_type": "close_ticket", "ticket_id": ticket}
        return {"action_type": "classify_ticket", "ticket_id": ticket, "category": "billing"}

    async def complete(self, request: Request):
        body = await request.json()
        self.requests.append(body)
        model = body["model"]
        prompt = body["messages"][-1]["content"]
        if model == "hang":
            return await self.never_answer(request)
        if model == "dead-500":
            return JSONResponse({"error": {"message": "upstream exploded"}}, status_code=500)
        if model == "flaky-429" and len(self.requests) == 1:
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
        if model == "no-tools" and body.get("tools"):
            return JSONResponse({"error": {"message": "this model does not support tools"}}, status_code=400)
        if model == "garbage":
            return completion(model, content="I would love to help this customer, they seem upset.")
        action = self.next_action(prompt)
        if model in ("fenced-json", "no-tools"):
            return completion(model, content=f"Sure.\n```json\n{json.dumps(action)}\n```")
        name = action.pop("action_type")
        call = {"id": f"call_{len(self.requests)}", "type": "function", "function": {"name": name, "arguments": json.dumps(action)}}
        return completion(model, tool_calls=[call])

    @staticmethod
    async def never_answer(request: Request, give_up_s: float = 600.0):
        """Hold the request open without a byte of answer until the client disconnects
        (then the answer goes nowhere), or `give_up_s` passes."""
        deadline = time.monotonic() + give_up_s
        while not await request.is_disconnected() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return JSONResponse({"error": {"message": "gave up waiting"}}, status_code=504)


def completion(model: str, content: str | None = None, tool_calls: list | None = None) -> dict:
    message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class FakeLLMServer:
    """Runs a FakeLLM under uvicorn in a background thread."""

    def __init__(self, port: int):
        self.fake = FakeLLM()
        self.url = f"http://127.0.0.1:{port}/v1"
        self.server = uvicorn.Server(uvicorn.Config(self.fake.app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake LLM server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
