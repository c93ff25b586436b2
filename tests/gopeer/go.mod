module workflow-event-aggregator/tests/gopeer

go 1.21

require github.com/nats-io/stan.go v0.10.4

require (
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/klauspost/compress v1.17.3 // indirect
	github.com/nats-io/nats-server/v2 v2.9.24 // indirect
	github.com/nats-io/nats-streaming-server v0.25.6 // indirect
	github.com/nats-io/nats.go v1.31.0 // indirect
	github.com/nats-io/nkeys v0.4.6 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.15.0 // indirect
	golang.org/x/sys v0.14.0 // indirect
)
