package ring

// Stack is a fixed-capacity stack of slot numbers: the free list of a
// table whose slots are 0..n-1. A new stack holds every slot, and Pop
// hands out slot 0 first, then 1, and so on, which keeps a lightly used
// table's live slots together at its start. The slots never handed out
// are counted, not stored, so a new stack's array is left untouched: its
// pages cost memory only once slots come back.
type Stack struct {
	s     []int32 // slots pushed back, the last on top
	fresh int32   // slots fresh..cap(s)-1 were never handed out
}

// NewStack returns a stack holding every slot number below n.
func NewStack(n int) Stack { return Stack{s: make([]int32, 0, n)} }

// Len is the number of slots on the stack.
func (k *Stack) Len() int { return len(k.s) + cap(k.s) - int(k.fresh) }

// Pop takes the slot pushed last; false when the stack is empty.
func (k *Stack) Pop() (int32, bool) {
	if n := len(k.s); n > 0 {
		i := k.s[n-1]
		k.s = k.s[:n-1]
		return i, true
	}
	if int(k.fresh) == cap(k.s) {
		return -1, false
	}
	k.fresh++
	return k.fresh - 1, true
}

// Push returns slot i to the stack. Pushing more slots than NewStack
// made room for is a caller's bug and panics rather than growing.
func (k *Stack) Push(i int32) {
	if k.Len() == cap(k.s) {
		panic("ring: Stack.Push beyond its capacity")
	}
	k.s = append(k.s, i)
}
