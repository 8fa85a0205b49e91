// Package callctx gives mellium calls that write on a connection a context
// that cannot interrupt a later write.
package callctx

import "context"

// For returns the context to hand a mellium call that writes on the
// connection (Send, SendIQ, a handshake or stream negotiation): it ends when
// ctx does, until release is called, and never after.
//
// mellium (v0.22) makes such a call's context interrupt it by a goroutine
// that, once the context ends, sets the connection's deadline in the past
// and then clears it. Nothing waits for that goroutine: if the context ends
// just after the call returned (a handler's context is cancelled as the
// handler returns, a caller's by its deferred cancel) and the goroutine has
// not run yet, it may still take the ended context and set the deadline
// later, while another stanza is being written. That write fails with
// "i/o timeout" and the session ends.
//
// This narrows the window to a caller's context ending during the call
// itself (then AfterFunc may have started cancelling when release runs);
// closing it would mean handing mellium a context that never ends and
// setting deadlines here.
func For(ctx context.Context) (context.Context, func()) {
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	return callCtx, func() { stop() }
}
