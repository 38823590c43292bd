module github.com/ssekit/sse/bench/compare

go 1.26.0

require github.com/ssekit/sse v0.0.0

require github.com/tmaxmax/go-sse v0.12.0

replace github.com/ssekit/sse => ../..
