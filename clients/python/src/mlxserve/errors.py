"""The exception the client raises when the server refuses or fails a request, or a call breaks.

The server reports a refused request in two ways (see the GenerationService comment): on the
Generate stream as an `error` event (a GenerationError), and in the other RPCs as the call's
status, with the same GenerationError packed into the status details. Both become a
RequestError, so callers handle one type and can read the offending field either way.
"""

from __future__ import annotations

import google.rpc.status_pb2 as status_pb2
import grpc

from mlxserve.v1 import generation_pb2

# Where gRPC carries the google.rpc.Status with the error's details.
_STATUS_DETAILS_KEY = "grpc-status-details-bin"

# ErrorCode numbers are gRPC status code numbers.
_STATUS_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class RequestError(Exception):
    """A request the server refused or failed, or a call that ended with an error status.

    Attributes:
        code: The gRPC status code (GenerationError.code has the same number).
        message: What went wrong, for people.
        field: The offending request field for INVALID_ARGUMENT, as its snake_case path below the
            request (e.g. ``sampling.temperature``); empty otherwise.
        request_id: The Generate-stream request this error belongs to; empty for other calls.
    """

    def __init__(self, code: grpc.StatusCode, message: str, *, field: str = "", request_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" (request {self.request_id!r})" if self.request_id else ""
        field = f" [field {self.field}]" if self.field else ""
        return f"{self.code.name}{where}: {self.message}{field}"

    @classmethod
    def from_generation_error(cls, error: generation_pb2.GenerationError, request_id: str = "") -> RequestError:
        """The error of a Generate-stream `error` event or a FINISH_REASON_ERROR finish."""
        code = _STATUS_CODE_BY_NUMBER.get(error.code, grpc.StatusCode.UNKNOWN)
        return cls(code, error.message, field=error.field, request_id=request_id)

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> RequestError:
        """The error of a failed call, with the field from its GenerationError detail if it has one."""
        if not isinstance(error, grpc.Call):
            # grpcio raises RpcErrors that are also Calls; anything else carries no status.
            return cls(grpc.StatusCode.UNKNOWN, str(error))
        code = error.code() or grpc.StatusCode.UNKNOWN
        detail = _generation_error_detail(error)
        message = error.details() or (detail.message if detail else "") or code.name
        return cls(code, message, field=detail.field if detail else "")


def _generation_error_detail(call: grpc.Call) -> generation_pb2.GenerationError | None:
    """The GenerationError packed into the call's status details, if any."""
    for key, value in call.trailing_metadata() or ():
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            error = generation_pb2.GenerationError()
            if detail.Unpack(error):  # False for details of other types
                return error
    return None
