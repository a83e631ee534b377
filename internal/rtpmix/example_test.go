package rtpmix_test

import (
	"fmt"
	"time"

	"callvault/internal/audio"
	"callvault/internal/rtpmix"
)

func ExampleTimeline() {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tl := rtpmix.New(start, rtpmix.Config{}) // 2 channels, 200 ms window
	caller, nurse := tl.Leg(0), tl.Leg(1)

	// One second of each party, 20 ms per packet; the nurse's leg is quiet
	// for its first 200 ms.
	var out []byte
	for k := range 50 {
		now := start.Add(time.Duration(k) * 20 * time.Millisecond)
		out = tl.Drain(out, now) // on a ticker, into the encryptor
		payload := make([]byte, 160)
		for i := range payload {
			payload[i] = audio.EncodeMuLaw(1000)
		}
		caller.Push(rtpmix.Packet{Arrival: now, SSRC: 1, Seq: uint16(k), Timestamp: uint32(160 * k), PayloadType: rtpmix.PayloadPCMU, Payload: payload})
		if k >= 10 {
			nurse.Push(rtpmix.Packet{Arrival: now, SSRC: 2, Seq: uint16(k), Timestamp: uint32(160 * k), PayloadType: rtpmix.PayloadPCMU, Payload: payload})
		}
	}
	fmt.Println(len(out), "bytes drained during the call")
	out = tl.Close(out, start.Add(time.Second))
	fmt.Println(len(out), "bytes in all:", tl.Emitted(), "stereo frames")
	st := nurse.Stats()
	fmt.Println(st.Packets, st.Lost, st.Codecs)
	// Output:
	// 24960 bytes drained during the call
	// 32000 bytes in all: 8000 stereo frames
	// 40 0 [PCMU]
}
