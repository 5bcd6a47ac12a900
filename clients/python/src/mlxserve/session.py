"""Many requests over one bidirectional Generate stream, each read as its own iterator of events.

A Session owns one Generate call. `start()` sends a StartGeneration and returns a Generation, an
iterator over that request's events only; `cancel()` sends a CancelGeneration. One reader thread
receives the stream and routes each event by its request id into that request's own queue, so a
request that nobody reads never holds up the others.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import grpc

from mlxserve.errors import RequestError
from mlxserve.inputs import PromptLike, build_prompt, build_sampling
from mlxserve.v1 import generation_pb2, generation_service_pb2, generation_service_pb2_grpc, prompt_pb2

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from mlxserve.inputs import Sampling
    from mlxserve.tools import ToolChoiceLike, ToolLike

Event = Union[generation_pb2.GenerationStarted, generation_pb2.GenerationDelta, generation_pb2.GenerationFinished]
"""One event of a request: started, then deltas, then finished."""

# What the reader thread puts into a request's queue: an event of the stream, or the error that
# ended the stream before the request finished.
_Item = Union[generation_service_pb2.GenerateResponse, RequestError]


@dataclass
class Completion:
    """A request's whole output, gathered from its events (or from a Complete call)."""

    text: str
    token_ids: list[int]
    logprobs: list[generation_pb2.TokenLogprob]
    finished: generation_pb2.GenerationFinished
    started: generation_pb2.GenerationStarted | None = field(default=None)
    tool_calls: list[prompt_pb2.ToolCall] = field(default_factory=list)
    """The tools the model called, in order (id, name, arguments as JSON text; see
    parse_arguments); the finish reason is then FINISH_REASON_TOOL_CALLS."""
    model: str = ""
    """The model that served the request."""

    @property
    def finish_reason(self) -> generation_pb2.FinishReason:
        return self.finished.finish_reason

    def assistant_message(self) -> dict[str, Any]:
        """The assistant turn this output adds to a chat (its text and tool calls), to send back
        with the tool results (see tool_message)."""
        return {"role": "assistant", "content": self.text, "tool_calls": list(self.tool_calls)}


def collect(events: Iterator[Event]) -> Completion:
    """Reads events to the end and joins their deltas."""
    text: list[str] = []
    token_ids: list[int] = []
    logprobs: list[generation_pb2.TokenLogprob] = []
    tool_calls: list[prompt_pb2.ToolCall] = []
    started: generation_pb2.GenerationStarted | None = None
    for event in events:
        if isinstance(event, generation_pb2.GenerationStarted):
            started = event
        elif isinstance(event, generation_pb2.GenerationDelta):
            text.append(event.text)
            token_ids.extend(event.token_ids)
            logprobs.extend(event.logprobs)
            tool_calls.extend(event.tool_calls)
        else:
            model = started.model if started is not None else ""
            return Completion("".join(text), token_ids, logprobs, event, started, tool_calls, model)
    raise RequestError(grpc.StatusCode.INTERNAL, "the events ended without a finished event")


class Generation(Iterator[Event]):
    """One request of a Session. Iterate it for its events: one GenerationStarted, zero or more
    GenerationDelta, then one GenerationFinished, after which iteration stops.

    Iteration raises RequestError when the server refused the request (an `error` event, e.g.
    INVALID_ARGUMENT with `field` naming the bad parameter) or when the stream broke before the
    request finished. A request that fails while generating ends with a GenerationFinished whose
    finish_reason is FINISH_REASON_ERROR (see its `error`), not with an exception.
    """

    def __init__(self, session: Session, request_id: str, inbox: queue.SimpleQueue[_Item]) -> None:
        self.request_id = request_id
        self.started: generation_pb2.GenerationStarted | None = None
        self.finished: generation_pb2.GenerationFinished | None = None
        self._session = session
        self._inbox = inbox
        self._done = False

    def __iter__(self) -> Generation:
        return self

    def __next__(self) -> Event:
        if self._done:
            raise StopIteration
        item = self._inbox.get()
        if isinstance(item, RequestError):
            self._done = True
            raise item
        kind = item.WhichOneof("event")
        if kind == "error":
            self._done = True
            raise RequestError.from_generation_error(item.error, self.request_id)
        if kind == "started":
            self.started = item.started
            return item.started
        if kind == "delta":
            return item.delta
        if kind == "finished":
            self._done = True
            self.finished = item.finished
            return item.finished
        self._done = True
        raise RequestError(grpc.StatusCode.INTERNAL, f"event without a known kind: {item}", request_id=self.request_id)

    def cancel(self) -> None:
        """Asks the server to stop this request; its events end with FINISH_REASON_CANCELLED
        (or its normal finish, if it finished first)."""
        self._session.cancel(self.request_id)

    def result(self) -> Completion:
        """Reads the remaining events and returns the whole output (only of the events not yet read)."""
        completion = collect(self)
        if completion.started is None and self.started is not None:
            completion.started = self.started
            completion.model = self.started.model
        return completion


class Session:
    """Multiplexes requests over one Generate stream. Use it as a context manager, or call
    close() (or abort()) when done:

        with client.session() as session:
            a = session.start("Once upon a time", max_tokens=16)
            b = session.start([{"role": "user", "content": "Hi"}], max_tokens=16)
            for event in a: ...
            print(b.result().text)

    Safe to use from several threads; each Generation should be read by one thread.
    """

    def __init__(
        self,
        stub: generation_service_pb2_grpc.GenerationServiceStub,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        self._outgoing: queue.SimpleQueue[generation_service_pb2.GenerateRequest | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._inboxes: dict[str, queue.SimpleQueue[_Item]] = {}
        self._ids = itertools.count(1)
        self._half_closed = False
        self._stream_over = False
        self._stream_error: RequestError | None = None  # why the stream failed, if it did
        self._call = stub.Generate(iter(self._outgoing.get, None), timeout=timeout, metadata=metadata)
        self._reader = threading.Thread(target=self._read, name="mlxserve-session-reader", daemon=True)
        self._reader.start()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def start(
        self,
        prompt: PromptLike,
        *,
        request_id: str | None = None,
        model: str | None = None,
        adapter: str | None = None,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: ToolChoiceLike | None = None,
        parallel_tool_calls: bool | None = None,
        **sampling: Unpack[Sampling],
    ) -> Generation:
        """Starts a request on the stream and returns its Generation.

        Args:
            prompt: Text, token ids, chat messages or a Prompt message (see build_prompt).
            request_id: The id that tags the request's events; default a fresh "r<N>". Must not be
                the id of an unfinished request of this session.
            model: A model id from Client.models() (a LoRA adapter's name selects it); default the
                server's default model.
            adapter: A LoRA adapter to generate with (its name), instead of naming it in model.
            tools, tool_choice, parallel_tool_calls: For chat: the tools the model may call (see
                build_prompt); its calls come on the deltas' tool_calls.
            **sampling: Sampling parameters (temperature, top_p, max_tokens, stop, json_schema, ...).

        Raises:
            ValueError: For a request id already in use by an unfinished request, or an invalid
                prompt, tool or sampling parameter (see build_prompt, build_sampling).
            RequestError: When the session's stream has failed (e.g. UNAVAILABLE).
            RuntimeError: When the session is closed or its stream has ended normally.
        """
        start = generation_service_pb2.StartGeneration(
            prompt=build_prompt(prompt, tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls),
            sampling=build_sampling(sampling),
        )
        if model is not None:
            start.model = model
        if adapter is not None:
            start.adapter = adapter
        inbox: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        with self._lock:
            self._check_open()
            if request_id is None:
                request_id = self._fresh_id()
            if request_id in self._inboxes:
                # The server would refuse it with ALREADY_EXISTS, but that event would carry the
                # running request's id and be routed to it; refuse it here instead.
                raise ValueError(f"request_id {request_id!r} is already running on this session")
            start.request_id = request_id
            # Registered before sending, so no event can arrive for an unknown id.
            self._inboxes[request_id] = inbox
            self._outgoing.put(generation_service_pb2.GenerateRequest(start=start))
        return Generation(self, request_id, inbox)

    def cancel(self, request_id: str) -> None:
        """Asks the server to stop a request; does nothing for an unknown or finished one."""
        with self._lock:
            if request_id not in self._inboxes or self._half_closed:
                return
            cancel = generation_service_pb2.CancelGeneration(request_id=request_id)
            self._outgoing.put(generation_service_pb2.GenerateRequest(cancel=cancel))

    def close(self) -> None:
        """Half-closes the stream and waits for it to end: no new requests; the running ones
        finish and their events stay readable."""
        self._half_close()
        self._reader.join()

    def abort(self) -> None:
        """Cancels the call: the server cancels every unfinished request, and reading them raises
        RequestError (CANCELLED)."""
        self._call.cancel()
        self._half_close()
        self._reader.join()

    @property
    def running(self) -> list[str]:
        """The ids of the requests that have not finished yet."""
        with self._lock:
            return list(self._inboxes)

    def _fresh_id(self) -> str:
        while True:
            candidate = f"r{next(self._ids)}"
            if candidate not in self._inboxes:
                return candidate

    def _check_open(self) -> None:
        failure = self._stream_error
        if failure is not None:
            raise RequestError(failure.code, f"the session's stream failed: {failure.message}")
        if self._stream_over:
            raise RuntimeError("the session's stream has ended")
        if self._half_closed:
            raise RuntimeError("the session is closed")

    def _half_close(self) -> None:
        with self._lock:
            if not self._half_closed:
                self._half_closed = True
                self._outgoing.put(None)  # ends the request iterator gRPC is reading

    def _read(self) -> None:
        failure: RequestError | None = None
        try:
            for response in self._call:
                self._route(response)
        except grpc.RpcError as error:
            failure = RequestError.from_rpc_error(error)
        finally:
            # The server ends the stream with OK only after every request finished; a request
            # still unfinished here lost its events.
            ended = failure or RequestError(grpc.StatusCode.INTERNAL, "the stream ended before the request finished")
            with self._lock:
                self._stream_over = True
                self._stream_error = failure
                unfinished = list(self._inboxes.items())
                self._inboxes.clear()
                if not self._half_closed:
                    self._half_closed = True
                    self._outgoing.put(None)
            for request_id, inbox in unfinished:
                inbox.put(RequestError(ended.code, ended.message, field=ended.field, request_id=request_id))

    def _route(self, response: generation_service_pb2.GenerateResponse) -> None:
        last = response.WhichOneof("event") in ("finished", "error")
        with self._lock:
            inbox = self._inboxes.pop(response.request_id, None) if last else self._inboxes.get(response.request_id)
        if inbox is not None:  # events of requests this session did not start are dropped
            inbox.put(response)
