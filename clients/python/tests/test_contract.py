"""Checks that the generated Python code carries the contract: a Generate request and event survive
the wire format, unset sampling fields stay distinguishable from zeros, and the service has its
methods with the right streaming kinds."""

from mlxserve.v1 import generation_pb2, generation_service_pb2, generation_service_pb2_grpc, prompt_pb2, sampling_pb2


def test_generate_request_round_trip() -> None:
    request = generation_service_pb2.GenerateRequest(
        start=generation_service_pb2.StartGeneration(
            request_id="r1",
            prompt=prompt_pb2.Prompt(tokens=prompt_pb2.TokenIds(ids=[1, 2, 3])),
            sampling=sampling_pb2.SamplingParams(
                temperature=0.0, seed=-7, logit_bias={42: -100.0}, stop=["\n\n"], top_logprobs=5
            ),
        )
    )
    decoded = generation_service_pb2.GenerateRequest.FromString(request.SerializeToString())
    assert decoded == request
    sampling = decoded.start.sampling
    assert sampling.HasField("temperature") and sampling.temperature == 0.0
    assert not sampling.HasField("top_p")
    assert decoded.WhichOneof("action") == "start"
    assert decoded.start.prompt.WhichOneof("input") == "tokens"


def test_generate_response_round_trip() -> None:
    response = generation_service_pb2.GenerateResponse(
        request_id="r1",
        delta=generation_pb2.GenerationDelta(
            text="Hé",
            token_ids=[72, 233],
            logprobs=[
                generation_pb2.TokenLogprob(
                    token_id=72,
                    token="H",
                    logprob=-0.25,
                    token_bytes=b"H",
                    top_logprobs=[generation_pb2.TopLogprob(token_id=73, token="I", logprob=-1.5, token_bytes=b"I")],
                )
            ],
        ),
    )
    decoded = generation_service_pb2.GenerateResponse.FromString(response.SerializeToString())
    assert decoded == response
    assert decoded.WhichOneof("event") == "delta"


def test_service_methods() -> None:
    service = generation_service_pb2.DESCRIPTOR.services_by_name["GenerationService"]
    kinds = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}
    assert kinds == {
        "Generate": (True, True),
        "GenerateStream": (False, True),
        "Complete": (False, False),
        "Tokenize": (False, False),
        "Detokenize": (False, False),
        "ListModels": (False, False),
        "GetServerStatus": (False, False),
        "LoadAdapter": (False, False),
        "UnloadAdapter": (False, False),
    }
    assert hasattr(generation_service_pb2_grpc, "GenerationServiceStub")
