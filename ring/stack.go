package ring

// Stack is a fixed-capacity stack of slot numbers: the free list of a
// table whose slots are 0..n-1. NewStack fills it so that Pop hands out
// slot 0 first, then 1, and so on, which keeps a lightly used table's
// live slots together at its start.
type Stack struct{ s []int32 }

// NewStack returns a stack holding every slot number below n.
func NewStack(n int) Stack {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(n - 1 - i)
	}
	return Stack{s: s}
}

// Len is the number of slots on the stack.
func (k *Stack) Len() int { return len(k.s) }

// Pop takes the slot pushed last; false when the stack is empty.
func (k *Stack) Pop() (int32, bool) {
	n := len(k.s)
	if n == 0 {
		return -1, false
	}
	i := k.s[n-1]
	k.s = k.s[:n-1]
	return i, true
}

// Push returns slot i to the stack. Pushing more slots than NewStack
// made room for is a caller's bug and panics rather than growing.
func (k *Stack) Push(i int32) {
	if len(k.s) == cap(k.s) {
		panic("ring: Stack.Push beyond its capacity")
	}
	k.s = append(k.s, i)
}
