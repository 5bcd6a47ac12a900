"""A small synchronous client of GenerationService over grpcio: plain Python values in, generated
messages (or text) out, and RequestError for every refused or failed call."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

import grpc

from mlxserve.errors import RequestError
from mlxserve.inputs import PromptLike, build_prompt, build_sampling
from mlxserve.session import Completion, Event, Session
from mlxserve.v1 import generation_pb2, generation_service_pb2, generation_service_pb2_grpc

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from mlxserve.inputs import Sampling
    from mlxserve.tools import ToolChoiceLike, ToolLike

_Response = TypeVar("_Response")

MAX_PROMPT_CACHE_KEY_BYTES = 256


def prompt_cache_metadata(key: str | None) -> list[tuple[str, str]] | None:
    """The x-prompt-cache-key metadata of a prompt cache key, or None for no key.

    Metadata is printable ASCII and HTTP trims spaces at either end, so other characters, spaces
    and % are percent-encoded from their UTF-8 bytes, as the server's REST adapter sends a body's
    prompt_cache_key: the same key routes the same way from either.
    """
    if key is None or key == "":
        return None
    if not isinstance(key, str):
        raise TypeError(f"prompt_cache_key must be a string, got {type(key).__name__}")
    encoded = key.encode("utf-8", errors="surrogatepass")
    if len(encoded) > MAX_PROMPT_CACHE_KEY_BYTES:
        raise ValueError(f"prompt_cache_key: at most {MAX_PROMPT_CACHE_KEY_BYTES} bytes (UTF-8), got {len(encoded)}")
    value = "".join(chr(b) if 0x21 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in encoded)
    return [("x-prompt-cache-key", value)]


class Client:
    """A connection to one server.

        with Client("localhost:50051") as client:
            for text in client.generate_text("Once upon a time", max_tokens=32):
                print(text, end="")

    Args:
        target: The server address, e.g. "localhost:50051".
        credentials: TLS credentials; default a plaintext connection.
        timeout: Default deadline of each call in seconds (a Session's: of the whole stream);
            default none.
        options: gRPC channel options.
    """

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float | None = None,
        options: Sequence[tuple[str, object]] | None = None,
    ) -> None:
        if credentials is None:
            self.channel = grpc.insecure_channel(target, options=options)
        else:
            self.channel = grpc.secure_channel(target, credentials, options=options)
        self.stub = generation_service_pb2_grpc.GenerationServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.timeout = timeout

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel; calls still running on it are cancelled."""
        self.channel.close()

    def generate(
        self,
        prompt: PromptLike,
        *,
        model: str | None = None,
        adapter: str | None = None,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: ToolChoiceLike | None = None,
        parallel_tool_calls: bool | None = None,
        prompt_cache_key: str | None = None,
        **sampling: Unpack[Sampling],
    ) -> Iterator[Event]:
        """Runs one request (GenerateStream) and yields its events: GenerationStarted, then
        GenerationDelta, then GenerationFinished. Stopping the iteration early cancels the
        request on the server.

        Args:
            prompt: Text, token ids, chat messages or a Prompt message (see build_prompt).
            model: A model id from models() (a LoRA adapter's name selects it); default the
                server's default model.
            adapter: A LoRA adapter to generate with (its name), instead of naming it in model.
            tools: For chat: functions the model may call (see ToolLike); its calls come on the
                deltas' tool_calls and the request finishes with FINISH_REASON_TOOL_CALLS.
            tool_choice: For chat: "auto" (default with tools), "none", "required" or
                {"function": name}.
            parallel_tool_calls: For chat: let the model call several tools in one answer
                (default false).
            prompt_cache_key: Names the prefix this request shares with others (a conversation, a
                user), as OpenAI's field of that name: sent as x-prompt-cache-key metadata, on which
                a balancer in front of several servers keeps such requests on one server. At most
                256 bytes (UTF-8); "" is none.
            **sampling: Sampling parameters (temperature, top_p, max_tokens, stop, ...) and at most
                one structured output format (json_schema, regex, choice, grammar, json_object).

        Raises:
            ValueError, TypeError: For an invalid prompt, tool, prompt cache key or sampling
                parameter, at once.
            RequestError: When the server refuses the request (e.g. INVALID_ARGUMENT naming the
                field) or the call fails. Raised while iterating, as the call is lazy.
        """
        request = generation_service_pb2.GenerateStreamRequest(
            prompt=build_prompt(prompt, tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls),
            sampling=build_sampling(sampling),
        )
        if model is not None:
            request.model = model
        if adapter is not None:
            request.adapter = adapter
        return self._stream_events(request, prompt_cache_metadata(prompt_cache_key))

    def generate_text(
        self,
        prompt: PromptLike,
        *,
        model: str | None = None,
        adapter: str | None = None,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: ToolChoiceLike | None = None,
        parallel_tool_calls: bool | None = None,
        prompt_cache_key: str | None = None,
        **sampling: Unpack[Sampling],
    ) -> Iterator[str]:
        """Like generate(), but yields only the non-empty text of each delta (not tool calls).

        Raises:
            RequestError: As generate(), and when the request finishes with FINISH_REASON_ERROR.
        """
        events = self.generate(
            prompt,
            model=model,
            adapter=adapter,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            prompt_cache_key=prompt_cache_key,
            **sampling,
        )
        for event in events:
            if isinstance(event, generation_pb2.GenerationDelta) and event.text:
                yield event.text
            elif isinstance(event, generation_pb2.GenerationFinished) and event.HasField("error"):
                raise RequestError.from_generation_error(event.error)

    def complete(
        self,
        prompt: PromptLike,
        *,
        model: str | None = None,
        adapter: str | None = None,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: ToolChoiceLike | None = None,
        parallel_tool_calls: bool | None = None,
        prompt_cache_key: str | None = None,
        **sampling: Unpack[Sampling],
    ) -> Completion:
        """Runs one request (Complete) and returns the whole completion: text, token_ids,
        logprobs, tool_calls, finished (finish reason and usage) and model. Arguments as
        generate().

        Raises:
            RequestError: When the server refuses or fails the request.
        """
        built = build_prompt(prompt, tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls)
        request = generation_service_pb2.CompleteRequest(prompt=built, sampling=build_sampling(sampling))
        if model is not None:
            request.model = model
        if adapter is not None:
            request.adapter = adapter
        metadata = prompt_cache_metadata(prompt_cache_key)
        response: generation_service_pb2.CompleteResponse = self._unary(self.stub.Complete, request, metadata)
        return Completion(
            text=response.text,
            token_ids=list(response.token_ids),
            logprobs=list(response.logprobs),
            finished=response.finished,
            tool_calls=list(response.tool_calls),
            model=response.model,
        )

    def session(self, *, timeout: float | None = None, prompt_cache_key: str | None = None) -> Session:
        """Opens a Generate stream that multiplexes many requests (see Session).

        Args:
            timeout: Deadline of the whole stream in seconds; default the client's timeout.
            prompt_cache_key: As generate()'s; a stream reaches one server, so one key for all
                its requests.
        """
        return Session(
            self.stub,
            timeout=timeout if timeout is not None else self.timeout,
            metadata=prompt_cache_metadata(prompt_cache_key),
        )

    def tokenize(self, prompt: PromptLike, *, model: str | None = None) -> list[int]:
        """The token ids the prompt becomes, exactly as a request would feed them to the model
        (chat template and special tokens included)."""
        request = generation_service_pb2.TokenizeRequest(prompt=build_prompt(prompt))
        if model is not None:
            request.model = model
        response: generation_service_pb2.TokenizeResponse = self._unary(self.stub.Tokenize, request)
        return list(response.token_ids)

    def token_strings(self, prompt: PromptLike, *, model: str | None = None) -> list[tuple[int, str]]:
        """Like tokenize(), with each token decoded on its own (U+FFFD for part of a character)."""
        request = generation_service_pb2.TokenizeRequest(prompt=build_prompt(prompt), return_token_strings=True)
        if model is not None:
            request.model = model
        response: generation_service_pb2.TokenizeResponse = self._unary(self.stub.Tokenize, request)
        return list(zip(response.token_ids, response.token_strings))

    def detokenize(
        self, token_ids: Sequence[int], *, model: str | None = None, skip_special_tokens: bool = False
    ) -> str:
        """The text the token ids decode to."""
        request = generation_service_pb2.DetokenizeRequest(token_ids=token_ids, skip_special_tokens=skip_special_tokens)
        if model is not None:
            request.model = model
        response: generation_service_pb2.DetokenizeResponse = self._unary(self.stub.Detokenize, request)
        return response.text

    def load_adapter(self, name: str, path: str) -> generation_service_pb2.ModelInfo:
        """Reads a LoRA adapter (mlx-lm's or PEFT's directory, on the server's disk) and serves it
        as `name`; returns it as models() lists it (with parent and adapter set).

        Raises:
            RequestError: INVALID_ARGUMENT for a bad name or adapter files (naming the file and
                field), ALREADY_EXISTS for a name already served.
        """
        response: generation_service_pb2.LoadAdapterResponse = self._unary(
            self.stub.LoadAdapter, generation_service_pb2.LoadAdapterRequest(name=name, path=path)
        )
        return response.model

    def unload_adapter(self, name: str) -> None:
        """Stops serving a LoRA adapter; returns once the requests using it have finished.

        Raises:
            RequestError: NOT_FOUND for a name not served.
        """
        self._unary(self.stub.UnloadAdapter, generation_service_pb2.UnloadAdapterRequest(name=name))

    def models(self) -> list[generation_service_pb2.ModelInfo]:
        """The models the server serves: the default model first, then the LoRA adapters (their
        parent is the base model's id)."""
        response: generation_service_pb2.ListModelsResponse = self._unary(
            self.stub.ListModels, generation_service_pb2.ListModelsRequest()
        )
        return list(response.models)

    def status(self) -> generation_service_pb2.GetServerStatusResponse:
        """The engine's state and load (running and waiting requests, KV cache use)."""
        response: generation_service_pb2.GetServerStatusResponse = self._unary(
            self.stub.GetServerStatus, generation_service_pb2.GetServerStatusRequest()
        )
        return response

    def _unary(
        self, method: Callable[..., _Response], request: object, metadata: list[tuple[str, str]] | None = None
    ) -> _Response:
        try:
            return method(request, timeout=self.timeout, metadata=metadata)
        except grpc.RpcError as error:
            raise RequestError.from_rpc_error(error) from None

    def _stream_events(
        self, request: generation_service_pb2.GenerateStreamRequest, metadata: list[tuple[str, str]] | None
    ) -> Iterator[Event]:
        call = self.stub.GenerateStream(request, timeout=self.timeout, metadata=metadata)
        try:
            for response in call:
                kind = response.WhichOneof("event")
                if kind is not None:
                    yield getattr(response, kind)
        except grpc.RpcError as error:
            raise RequestError.from_rpc_error(error) from None
        finally:
            call.cancel()  # a no-op once the call has ended; frees the server's slot if the caller stopped early
