package client

import (
	"sync"

	mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"
)

// Request is one request of a Session.
type Request struct {
	// ID tags the request's events.
	ID string

	session *Session
	events  chan *mlxservev1.GenerateResponse
	wake    chan struct{} // has a value when the queue or ended changed

	mu     sync.Mutex
	queue  []*mlxservev1.GenerateResponse
	ended  bool
	err    error
	result chan struct{} // closed when the Events channel is closed
}

func newRequest(s *Session, id string) *Request {
	r := &Request{
		ID:      id,
		session: s,
		events:  make(chan *mlxservev1.GenerateResponse),
		wake:    make(chan struct{}, 1),
		result:  make(chan struct{}),
	}
	go r.deliver()
	return r
}

// Events carries the request's events in order: one `started`, zero or more `delta`, then one
// `finished`; or a single `error` when the server refused the request. It is closed after the
// last event, or early when the stream fails (see Err) or the session is closed.
func (r *Request) Events() <-chan *mlxservev1.GenerateResponse { return r.events }

// Err is why the request did not produce its output, once Events is closed: an *Error when the
// server refused it (e.g. InvalidArgument with Field), when it finished with FINISH_REASON_ERROR,
// or when the stream failed before it finished; nil when it finished (also when cancelled).
func (r *Request) Err() error {
	<-r.result
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Cancel asks the server to stop the request (see Session.Cancel).
func (r *Request) Cancel() error { return r.session.Cancel(r.ID) }

// push queues an event; it never blocks, whatever the reader of Events does.
func (r *Request) push(event *mlxservev1.GenerateResponse) {
	r.mu.Lock()
	r.queue = append(r.queue, event)
	r.mu.Unlock()
	r.signal()
}

// end marks the request ended: Events closes after the queued events.
func (r *Request) end(err error) {
	r.mu.Lock()
	if !r.ended {
		r.ended = true
		r.err = err
	}
	r.mu.Unlock()
	r.signal()
}

func (r *Request) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// deliver moves queued events to the Events channel until the request has ended and its queue
// is empty, or the session is released.
func (r *Request) deliver() {
	defer close(r.result)
	defer close(r.events)
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			ended := r.ended
			r.mu.Unlock()
			if ended {
				return
			}
			select {
			case <-r.wake:
				continue
			case <-r.session.released:
				return
			}
		}
		event := r.queue[0]
		r.queue[0] = nil
		r.queue = r.queue[1:]
		r.mu.Unlock()
		select {
		case r.events <- event:
		case <-r.session.released:
			return
		}
	}
}
