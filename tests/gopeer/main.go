// Command stan-gopeer is the byte-exact reference peer of the test suite.
//
// The official stan-pub example takes its payload from the command line, so it
// cannot send NUL bytes or a message close to the 1 MiB limit, and stan-sub
// prints payloads in protobuf text form. This peer uses the official Go client
// (github.com/nats-io/stan.go) and moves payloads through files and base64,
// so the Python tests can compare bytes exactly.
//
// Usage:
//
//	stan-gopeer pub -s URL -c CLUSTER -id ID CHANNEL FILE...
//	stan-gopeer sub -s URL -c CLUSTER -id ID [-all] [-durable NAME] [-count N] CHANNEL
//
// pub publishes each file as one message, synchronously, in order.
// sub prints "<sequence> <base64 of data>" per message on stdout, and
// "subscribed" on stderr once the subscription is registered.
package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	stan "github.com/nats-io/stan.go"
)

type common struct {
	url       string
	clusterID string
	clientID  string
}

func (c *common) register(fs *flag.FlagSet, defaultID string) {
	fs.StringVar(&c.url, "s", stan.DefaultNatsURL, "NATS server URL")
	fs.StringVar(&c.clusterID, "c", "test-cluster", "NATS Streaming cluster ID")
	fs.StringVar(&c.clientID, "id", defaultID, "NATS Streaming client ID")
}

// connect fails the process through lost when the server drops the client, so
// a test never waits on a peer that can no longer receive anything.
func (c *common) connect(lost chan<- error) (stan.Conn, error) {
	return stan.Connect(c.clusterID, c.clientID,
		stan.NatsURL(c.url),
		stan.SetConnectionLostHandler(func(_ stan.Conn, err error) { lost <- err }),
	)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "stan-gopeer: "+format+"\n", args...)
	os.Exit(1)
}

func runPub(args []string) {
	fs := flag.NewFlagSet("pub", flag.ExitOnError)
	var c common
	c.register(fs, "stan-gopeer-pub")
	_ = fs.Parse(args)
	if fs.NArg() < 2 {
		fail("pub needs a channel and at least one file")
	}
	channel, files := fs.Arg(0), fs.Args()[1:]
	// Read every file first: a missing file must not leave a half-sent batch.
	payloads := make([][]byte, 0, len(files))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			fail("read %s: %v", name, err)
		}
		payloads = append(payloads, data)
	}
	lost := make(chan error, 1)
	sc, err := c.connect(lost)
	if err != nil {
		fail("connect: %v", err)
	}
	defer sc.Close()
	for i, data := range payloads {
		if err := sc.Publish(channel, data); err != nil {
			sc.Close()
			fail("publish %s: %v", files[i], err)
		}
	}
}

func runSub(args []string) {
	fs := flag.NewFlagSet("sub", flag.ExitOnError)
	var c common
	c.register(fs, "stan-gopeer-sub")
	all := fs.Bool("all", false, "deliver all available messages")
	durable := fs.String("durable", "", "durable subscription name")
	count := fs.Int("count", 0, "exit after this many messages (0: run until a signal)")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		fail("sub needs exactly one channel")
	}
	channel := fs.Arg(0)

	opts := []stan.SubscriptionOption{}
	if *all {
		opts = append(opts, stan.DeliverAllAvailable())
	}
	if *durable != "" {
		opts = append(opts, stan.DurableName(*durable))
	}

	lost := make(chan error, 1)
	sc, err := c.connect(lost)
	if err != nil {
		fail("connect: %v", err)
	}
	// The handler runs on one goroutine per subscription, so lines are never
	// interleaved and arrive in delivery order.
	done := make(chan struct{})
	received := 0
	_, err = sc.Subscribe(channel, func(m *stan.Msg) {
		fmt.Printf("%d %s\n", m.Sequence, base64.StdEncoding.EncodeToString(m.Data))
		received++
		if *count > 0 && received == *count {
			close(done)
		}
	}, opts...)
	if err != nil {
		sc.Close()
		fail("subscribe: %v", err)
	}
	fmt.Fprintln(os.Stderr, "subscribed")

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	select {
	case <-done:
	case <-signals:
	case err := <-lost:
		fail("connection lost: %v", err)
	}
	// Close, not Unsubscribe: a durable keeps its position for the next run.
	if err := sc.Close(); err != nil {
		fail("close: %v", err)
	}
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: stan-gopeer pub|sub [options] ...")
	}
	switch os.Args[1] {
	case "pub":
		runPub(os.Args[2:])
	case "sub":
		runSub(os.Args[2:])
	default:
		fail("unknown command %q (want pub or sub)", os.Args[1])
	}
}
