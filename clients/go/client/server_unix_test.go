//go:build unix && !linux

package client_test

import "syscall"

// serverProcAttr puts the server in its own process group, so a stuck server and its engine
// process can be killed together.
func serverProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
