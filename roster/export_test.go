package roster

import "context"

// PushAll runs the worker until nothing is left to push (for benchmarks).
func (s *Service) PushAll(ctx context.Context) {
	for s.pushOnce(ctx) {
	}
}
