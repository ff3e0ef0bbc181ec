// Package reuse keeps a frame whose sender died before the observer read
// it from being pinned on the pid's next owner (cmd/varta-watch/README.md
// §3, "Pid reuse").
//
// The kernel attests a Unix-socket frame's pid (SCM_CREDENTIALS), but it
// translates the sender to a number when the frame is read: if the sender
// exited meanwhile and an unrelated process got its pid, the frame names
// that process. What the kernel also records is when the datagram was
// queued (SO_TIMESTAMPNS, which listen.ListenUDS sets: CLOCK_REALTIME,
// taken in sendmsg), and /proc/PID/stat gives the start time of the pid's
// current process (field 22, clock ticks of CLOCK_BOOTTIME). A frame
// queued before that process started was not sent by it: it is dropped
// and counted (Recycled). A frame queued clearly after it was, since one
// pid names one process at a time. In between, within a clock tick and
// the measuring error, nothing can be told (Unverifiable): such a frame
// may open a session, but one that no recovery ever acts on; a later
// frame that proves whose it is replaces it with a verified session, and
// such a frame never joins a verified one.
//
// Why not SO_PASSPIDFD (Linux 6.5), which hands over a pidfd of the
// sender itself: the kernel makes a file and installs a descriptor for
// every datagram read, which the observer must close (two extra system
// calls' worth per beat, a batch's worth of descriptors at once, and
// MSG_CTRUNC with the pidfd lost when the descriptor limit is near), and
// the boards this runs on include 5.x kernels without it. The timestamp
// costs no descriptor and no system call per beat; the price is the
// 10 ms blind spot around a process's start, closed by the next frame.
//
// Allocation: New allocates the Guard; nothing afterwards. A Guard is
// owned by the observer loop's goroutine.
package reuse
