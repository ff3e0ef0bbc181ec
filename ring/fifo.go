package ring

// FIFO is a fixed-capacity first-in first-out queue.
type FIFO[T any] struct {
	buf  []T
	head int
	n    int
}

// NewFIFO returns an empty queue holding at most capacity items.
func NewFIFO[T any](capacity int) FIFO[T] { return FIFO[T]{buf: make([]T, capacity)} }

// Len is the number of queued items; Cap the most it holds.
func (q *FIFO[T]) Len() int { return q.n }
func (q *FIFO[T]) Cap() int { return len(q.buf) }

// Push appends v, or reports false when the queue is full.
func (q *FIFO[T]) Push(v T) bool {
	if q.n == len(q.buf) {
		return false
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
	return true
}

// Pop removes and returns the oldest item; ok is false when empty.
func (q *FIFO[T]) Pop() (v T, ok bool) {
	if q.n == 0 {
		return v, false
	}
	v = q.buf[q.head]
	var zero T
	q.buf[q.head] = zero // drop references the item may hold
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return v, true
}
