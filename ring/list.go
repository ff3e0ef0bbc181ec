package ring

// Links holds the prev/next links of n nodes numbered 0..n-1, shared by
// any number of Lists: a node is on at most one of them at a time. Keeping
// links beside, not inside, the caller's slot array lets the same code
// serve every table.
type Links struct {
	prev, next []int32
	on         []bool
}

// NewLinks allocates links for n nodes, none on a list.
func NewLinks(n int) Links {
	return Links{prev: make([]int32, n), next: make([]int32, n), on: make([]bool, n)}
}

// Next is the node after i on its list, or -1 at the end.
func (k *Links) Next(i int32) int32 { return k.next[i] }

// Linked reports whether node i is on a list.
func (k *Links) Linked(i int32) bool { return k.on[i] }

// List is a doubly-linked list of nodes of one Links. Its zero value is not
// usable: start from NewList.
type List struct{ head, tail int32 }

// NewList returns an empty list.
func NewList() List { return List{head: -1, tail: -1} }

// Front is the first node, or -1 when the list is empty.
func (l *List) Front() int32 { return l.head }

// PushBack appends node i, which must not be on any list.
func (l *List) PushBack(k *Links, i int32) {
	k.prev[i], k.next[i], k.on[i] = l.tail, -1, true
	if l.tail >= 0 {
		k.next[l.tail] = i
	} else {
		l.head = i
	}
	l.tail = i
}

// Remove takes node i off l; i must be on l.
func (l *List) Remove(k *Links, i int32) {
	if p := k.prev[i]; p >= 0 {
		k.next[p] = k.next[i]
	} else {
		l.head = k.next[i]
	}
	if n := k.next[i]; n >= 0 {
		k.prev[n] = k.prev[i]
	} else {
		l.tail = k.prev[i]
	}
	k.prev[i], k.next[i], k.on[i] = -1, -1, false
}

// MoveToBack moves node i, which must be on l, to the tail.
func (l *List) MoveToBack(k *Links, i int32) {
	if l.tail == i {
		return
	}
	l.Remove(k, i)
	l.PushBack(k, i)
}

// Back is the last node, or -1 when the list is empty.
func (l *List) Back() int32 { return l.tail }

// Prev is the node before i on its list, or -1 at the front.
func (k *Links) Prev(i int32) int32 { return k.prev[i] }

// InsertAfter links node i, which must not be on any list, right after
// node at of l, or at the front when at is -1: what keeps a list sorted
// when a node does not belong at the tail.
func (l *List) InsertAfter(k *Links, at, i int32) {
	if at < 0 {
		k.prev[i], k.next[i], k.on[i] = -1, l.head, true
		if l.head >= 0 {
			k.prev[l.head] = i
		} else {
			l.tail = i
		}
		l.head = i
		return
	}
	if at == l.tail {
		l.PushBack(k, i)
		return
	}
	n := k.next[at]
	k.prev[i], k.next[i], k.on[i] = at, n, true
	k.next[at], k.prev[n] = i, i
}
