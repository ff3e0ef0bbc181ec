package sdnotify

import "github.com/varta-go/varta/promtext"

// Render emits the varta_notify_* families (cmd/varta-watch/README.md §7);
// nil-safe: without a notify socket there are none. It allocates nothing.
func (h *Handler) Render(e *promtext.Encoder) {
	if h == nil {
		return
	}
	c := &h.c
	e.Family("varta_notify_messages_total", "Lines of sd_notify messages read from --notify-socket, by kind (ignored: systemd keys of no use here, e.g. FDSTORE).", promtext.TypeCounter)
	for k, label := range KindLabels {
		e.Label("kind", label)
		e.Uint(c.Kinds[k])
	}
	e.Family("varta_notify_bad_total", "sd_notify messages dropped, or lines ignored (malformed, watchdog_usec), by reason.", promtext.TypeCounter)
	for r, label := range BadLabels {
		e.Label("reason", label)
		e.Uint(c.Bad[r])
	}
	e.Family("varta_notify_unknown_keys_total", "sd_notify lines with a key systemd does not define, ignored.", promtext.TypeCounter)
	e.Uint(c.Unknown)
	e.Family("varta_notify_truncated_total", "sd_notify messages longer than the 4096-byte receive buffer, dropped.", promtext.TypeCounter)
	e.Uint(c.Truncated)
	e.Family("varta_notify_thresholds_rounded_total", "WATCHDOG_USEC= thresholds rounded because all 8 threshold classes were in use.", promtext.TypeCounter)
	e.Uint(c.Rounded)
	e.Family("varta_notify_receive_errors_total", "Failed receives on --notify-socket.", promtext.TypeCounter)
	e.Uint(c.RecvErrors)
}
