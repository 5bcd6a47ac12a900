package client

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"
)

// Error is a request the server refused or failed, or a call that ended with an error status.
// It keeps the gRPC status, so status.Code(err) and status.FromError(err) work on it.
type Error struct {
	// Code is the gRPC status code (GenerationError.code has the same number).
	Code codes.Code
	// Message says what went wrong, for people.
	Message string
	// Field is the offending request field for InvalidArgument, as its snake_case path below the
	// request (e.g. "sampling.temperature"); empty otherwise.
	Field string
	// RequestID is the Generate-stream request the error belongs to; empty for other calls.
	RequestID string
}

func (e *Error) Error() string {
	text := e.Code.String()
	if e.RequestID != "" {
		text += fmt.Sprintf(" (request %q)", e.RequestID)
	}
	text += ": " + e.Message
	if e.Field != "" {
		text += " [field " + e.Field + "]"
	}
	return text
}

// GRPCStatus makes the error a gRPC status error.
func (e *Error) GRPCStatus() *status.Status {
	return status.New(e.Code, e.Message)
}

// fromGenerationError is the error of an `error` event or a FINISH_REASON_ERROR finish.
func fromGenerationError(requestID string, e *mlxservev1.GenerationError) *Error {
	return &Error{Code: codes.Code(e.GetCode()), Message: e.GetMessage(), Field: e.GetField(), RequestID: requestID}
}

// fromCallError turns a call's status error into an *Error, reading the field from the
// GenerationError in the status details. Errors that are not statuses are returned as they are.
func fromCallError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: st.Code(), Message: st.Message()}
	for _, detail := range st.Details() {
		if generationError, ok := detail.(*mlxservev1.GenerationError); ok {
			out.Field = generationError.GetField()
			break
		}
	}
	return out
}
