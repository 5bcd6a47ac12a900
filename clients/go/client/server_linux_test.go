package client_test

import "syscall"

// serverProcAttr puts the server in its own process group (so a stuck server and its engine
// process can be killed together) and has the kernel stop it if the test process dies without
// cleaning up, so it never outlives the tests. The signal fires when the thread that started
// it exits: TestMain starts it from a goroutine locked to its thread.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
