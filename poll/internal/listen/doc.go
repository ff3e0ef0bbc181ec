// Package listen owns the observer's sockets and what it reads about a
// sender from the kernel: the Unix datagram socket (ListenUDS: path
// checks, stale-socket probe, mode through the umask, SO_PASSCRED and
// receive timestamps), the control socket's Unix stream listener
// (ListenStream, the same checks), the UDP and TCP listeners (ListenUDP,
// ListenTCP), the recvmmsg(2) receiver with SCM_CREDENTIALS and the queue
// time parsed by hand (Receiver, of any message size, optionally keeping
// passed fds open until a batch is handled), the secure UDP opener (Secure,
// absent from -tags varta_nosecure builds), and the /proc identity helpers
// (ProcStartTime, ProcParentPid, ProcComm, ProcExe, ProcCmdline,
// ProcCgroup, NSCache).
//
// Allocation: a Receiver's arrays are sized once by NewReceiver and Recv
// allocates nothing; the /proc readers use stack buffers. Binding and
// error paths allocate. Nothing here starts a goroutine; each value is
// owned by the observer loop.
package listen
