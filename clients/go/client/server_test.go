package client_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// liveServer is the project's test server: the engine and the gRPC service on a tiny
// random-weight model, started as `node --import tsx test/helpers/test-server.ts`.
type liveServer struct {
	Target string
	Model  string
	cmd    *exec.Cmd
	log    *os.File
	exited chan error
}

const (
	// Loading the tiny model takes about a second; the rest is Node and the engine process
	// starting, which can be slow on a busy machine.
	startupTimeout = 180 * time.Second
	stopTimeout    = 20 * time.Second
)

func startLiveServer() (*liveServer, error) {
	root, err := filepath.Abs(filepath.Join("..", "..", "..")) // from clients/go/client
	if err != nil {
		return nil, err
	}
	log, err := os.CreateTemp("", "mlxserve-test-server-*.log")
	if err != nil {
		return nil, err
	}
	os.Remove(log.Name()) // kept open; gone when closed

	cmd := exec.Command("node", "--import", "tsx", "test/helpers/test-server.ts")
	cmd.Dir = root
	cmd.Stderr = log
	cmd.SysProcAttr = serverProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting the test server: %w", err)
	}
	s := &liveServer{cmd: cmd, log: log, exited: make(chan error, 1)}

	ready := make(chan struct {
		Port  int    `json:"port"`
		Model string `json:"model"`
	}, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		sent := false
		for scanner.Scan() {
			var line struct {
				Port  int    `json:"port"`
				Model string `json:"model"`
			}
			if !sent && json.Unmarshal(scanner.Bytes(), &line) == nil && line.Port != 0 {
				ready <- line
				sent = true
			}
		}
		// stdout is at its end: the server has exited (or closed it); Wait may run now.
		s.exited <- cmd.Wait()
	}()

	select {
	case line := <-ready:
		s.Target = fmt.Sprintf("127.0.0.1:%d", line.Port)
		s.Model = line.Model
		return s, nil
	case err := <-s.exited:
		s.exited <- err
		s.printLog()
		s.log.Close()
		return nil, fmt.Errorf("the test server exited before it was ready: %v", err)
	case <-time.After(startupTimeout):
		s.stop()
		s.printLog()
		s.log.Close()
		return nil, fmt.Errorf("the test server did not get ready in %v", startupTimeout)
	}
}

// stop sends SIGTERM and waits; if the server does not exit in time, its whole process group
// is killed.
func (s *liveServer) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.exited <- err
	case <-time.After(stopTimeout):
		killGroup(s.cmd.Process.Pid)
		err := <-s.exited
		s.exited <- err
		return errors.New("the test server did not stop on SIGTERM; killed it")
	}
	return nil
}

func (s *liveServer) printLog() {
	const limit = 4000
	if _, err := s.log.Seek(0, io.SeekStart); err != nil {
		return
	}
	text, _ := io.ReadAll(s.log)
	if len(text) > limit {
		text = text[len(text)-limit:]
	}
	fmt.Fprintf(os.Stderr, "--- test server log (last %d bytes) ---\n%s\n", limit, text)
}
