# The gRPC API from Python with the repository's client (clients/python, over grpcio).
import os

from mlxserve import Client

with Client(os.environ.get("MLX_GRPC_TARGET", "localhost:50051")) as client:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    print("".join(client.generate_text(messages, max_tokens=32, temperature=0)))

    # Two requests multiplexed on one Generate stream; one of them cancelled.
    with client.session() as session:
        # A long story that only the cancel ends (a short one could finish before the cancel arrives).
        story = session.start("Once upon a time", request_id="story", max_tokens=1000, ignore_eos=True)
        colour = session.start([("user", "Name a colour.")], request_id="colour", max_tokens=8, temperature=0)
        story.cancel()
        print(colour.result().text)
        print(story.result().finish_reason)  # FINISH_REASON_CANCELLED (4)

    print(client.tokenize("Hello world"))
