package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"
)

// Session multiplexes requests over one Generate stream. Start sends a request and returns its
// Request, whose Events channel carries that request's events only; one goroutine receives the
// stream and routes each event by request id into an unbounded per-request queue, so a request
// that nobody reads never holds up the others.
//
// End a session with CloseSend (no new requests; the running ones finish) and read the requests
// to their end, or with Close (cancels everything). Close must be called in any case to release
// the session's goroutines; it is safe to call more than once. All methods are safe for
// concurrent use.
type Session struct {
	stream grpc.BidiStreamingClient[mlxservev1.GenerateRequest, mlxservev1.GenerateResponse]
	cancel context.CancelFunc

	sendMu sync.Mutex // grpc streams allow one Send at a time

	mu         sync.Mutex
	requests   map[string]*Request // unfinished requests by id
	nextID     int
	halfClosed bool
	err        error // why the stream ended; set once done is closed

	done      chan struct{} // closed when the stream has ended
	released  chan struct{} // closed by Close: per-request goroutines stop delivering
	closeOnce sync.Once
}

// NewSession opens a Generate stream. Its requests live as long as ctx; cancelling ctx (or
// Close) cancels all of them.
func (c *Client) NewSession(ctx context.Context, opts ...grpc.CallOption) (*Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.RPC.Generate(ctx, opts...)
	if err != nil {
		cancel()
		return nil, fromCallError(err)
	}
	s := &Session{
		stream:   stream,
		cancel:   cancel,
		requests: map[string]*Request{},
		done:     make(chan struct{}),
		released: make(chan struct{}),
	}
	go s.receive()
	return s, nil
}

// Start sends a request. An empty RequestId gets a fresh id ("r1", "r2", ...; start is not
// modified). The id must not belong to an unfinished request of this session.
func (s *Session) Start(start *mlxservev1.StartGeneration) (*Request, error) {
	s.mu.Lock()
	if err := s.checkOpen(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if start.GetRequestId() == "" {
		start = proto.Clone(start).(*mlxservev1.StartGeneration)
		start.RequestId = s.freshID()
	}
	id := start.GetRequestId()
	if _, running := s.requests[id]; running {
		s.mu.Unlock()
		// The server would refuse it with ALREADY_EXISTS, but that event would carry the running
		// request's id and be routed to it; refuse it here instead.
		return nil, fmt.Errorf("request id %q is already running on this session", id)
	}
	r := newRequest(s, id)
	// Registered before sending, so no event can arrive for an unknown id.
	s.requests[id] = r
	s.mu.Unlock()

	if err := s.send(&mlxservev1.GenerateRequest{Action: &mlxservev1.GenerateRequest_Start{Start: start}}); err != nil {
		s.mu.Lock()
		if s.requests[id] == r {
			delete(s.requests, id)
		}
		s.mu.Unlock()
		r.end(err)
		return nil, err
	}
	return r, nil
}

// Cancel asks the server to stop a request; its events end with FINISH_REASON_CANCELLED (or its
// normal finish, if it finished first). Cancelling an unknown or finished request does nothing.
func (s *Session) Cancel(requestID string) error {
	s.mu.Lock()
	_, running := s.requests[requestID]
	closed := s.halfClosed
	s.mu.Unlock()
	if !running || closed {
		return nil
	}
	return s.send(&mlxservev1.GenerateRequest{Action: &mlxservev1.GenerateRequest_Cancel{
		Cancel: &mlxservev1.CancelGeneration{RequestId: requestID},
	}})
}

// CloseSend half-closes the stream: no new requests; the server finishes the running ones and
// then ends the stream (see Done).
func (s *Session) CloseSend() error {
	s.mu.Lock()
	if s.halfClosed {
		s.mu.Unlock()
		return nil
	}
	s.halfClosed = true
	s.mu.Unlock()
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.CloseSend()
}

// Close cancels the stream and every unfinished request, waits for the stream to end and
// releases the session's goroutines: Events channels not yet drained are closed.
func (s *Session) Close() {
	s.cancel()
	<-s.done
	s.closeOnce.Do(func() { close(s.released) })
}

// Done is closed when the stream has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the stream ended, once Done is closed: nil when the server ended it normally
// (after CloseSend and all requests finished).
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

func (s *Session) send(request *mlxservev1.GenerateRequest) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.stream.Send(request); err != nil {
		if errors.Is(err, io.EOF) {
			// The stream has ended; its status comes from Recv.
			<-s.done
			if s.err != nil {
				return s.err
			}
			return errors.New("the session's stream has ended")
		}
		return fromCallError(err)
	}
	return nil
}

func (s *Session) checkOpen() error {
	select {
	case <-s.done:
		if s.err != nil {
			return fmt.Errorf("the session's stream failed: %w", s.err)
		}
		return errors.New("the session's stream has ended")
	default:
	}
	if s.halfClosed {
		return errors.New("the session is closed for new requests (CloseSend)")
	}
	return nil
}

func (s *Session) freshID() string {
	for {
		s.nextID++
		id := "r" + strconv.Itoa(s.nextID)
		if _, taken := s.requests[id]; !taken {
			return id
		}
	}
}

// receive routes the stream's events until it ends, then ends the unfinished requests.
func (s *Session) receive() {
	var failure error
	for {
		response, err := s.stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				failure = fromCallError(err)
			}
			break
		}
		s.route(response)
	}
	s.mu.Lock()
	s.err = failure
	unfinished := s.requests
	s.requests = map[string]*Request{}
	s.mu.Unlock()
	// Ended before done closes, so that Close (which waits for done) never releases a request
	// whose error is not set yet.
	for id, r := range unfinished {
		if failure != nil {
			r.end(withRequestID(failure, id))
		} else {
			// The server ends the stream normally only after every request finished.
			r.end(&Error{Code: codes.Internal, Message: "the stream ended before the request finished", RequestID: id})
		}
	}
	close(s.done)
	s.cancel() // releases the context of a stream that ended by itself
}

func (s *Session) route(response *mlxservev1.GenerateResponse) {
	id := response.GetRequestId()
	s.mu.Lock()
	r := s.requests[id]
	last := response.GetFinished() != nil || response.GetError() != nil
	if r != nil && last {
		delete(s.requests, id)
	}
	s.mu.Unlock()
	if r == nil {
		return // not a request of this session
	}
	r.push(response)
	if last {
		r.end(requestOutcome(id, response))
	}
}

// requestOutcome is the error a request's last event reports: a refusal, a failure while
// generating, or nil (finished, also when cancelled or stopped).
func requestOutcome(id string, last *mlxservev1.GenerateResponse) error {
	if refused := last.GetError(); refused != nil {
		return fromGenerationError(id, refused)
	}
	finished := last.GetFinished()
	if finished.GetFinishReason() == mlxservev1.FinishReason_FINISH_REASON_ERROR {
		return fromGenerationError(id, finished.GetError())
	}
	return nil
}

func withRequestID(err error, id string) error {
	var e *Error
	if errors.As(err, &e) {
		copied := *e
		copied.RequestID = id
		return &copied
	}
	return err
}
