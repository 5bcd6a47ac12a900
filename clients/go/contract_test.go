// Checks that the generated Go code carries the contract: a Generate request and event survive
// the wire format, unset sampling fields stay distinguishable from zeros, and the service has its
// methods with the right streaming kinds.
package contract_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"
)

func TestGenerateRequestRoundTrip(t *testing.T) {
	in := &mlxservev1.GenerateRequest{
		Action: &mlxservev1.GenerateRequest_Start{Start: &mlxservev1.StartGeneration{
			RequestId: "r1",
			Prompt: &mlxservev1.Prompt{Input: &mlxservev1.Prompt_Chat{Chat: &mlxservev1.ChatMessages{
				Messages: []*mlxservev1.ChatMessage{{Role: "user", Content: "Hi"}},
			}}},
			Sampling: &mlxservev1.SamplingParams{
				Temperature:  proto.Float64(0),
				Seed:         proto.Int64(-7),
				LogitBias:    map[int32]float32{42: -100},
				Stop:         []string{"\n\n"},
				StopTokenIds: []int32{2},
				TopLogprobs:  proto.Int32(5),
			},
		}},
	}
	wire, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := &mlxservev1.GenerateRequest{}
	if err := proto.Unmarshal(wire, out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("round trip changed the message:\n in: %v\nout: %v", in, out)
	}
	sampling := out.GetStart().GetSampling()
	if sampling.Temperature == nil || sampling.GetTemperature() != 0 {
		t.Errorf("an explicit temperature of 0 must stay present, got %v", sampling.Temperature)
	}
	if sampling.TopP != nil {
		t.Errorf("an unset top_p must stay unset, got %v", sampling.GetTopP())
	}
}

func TestGenerateResponseRoundTrip(t *testing.T) {
	in := &mlxservev1.GenerateResponse{
		RequestId: "r1",
		Event: &mlxservev1.GenerateResponse_Finished{Finished: &mlxservev1.GenerationFinished{
			FinishReason: mlxservev1.FinishReason_FINISH_REASON_STOP,
			StopReason:   &mlxservev1.GenerationFinished_StopString{StopString: "\n\n"},
			Usage:        &mlxservev1.Usage{PromptTokens: 12, CompletionTokens: 3, CachedTokens: 8},
		}},
	}
	wire, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := &mlxservev1.GenerateResponse{}
	if err := proto.Unmarshal(wire, out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("round trip changed the message:\n in: %v\nout: %v", in, out)
	}
}

func TestServiceMethods(t *testing.T) {
	service := mlxservev1.File_mlxserve_v1_generation_service_proto.Services().ByName("GenerationService")
	if service == nil {
		t.Fatal("GenerationService is missing")
	}
	want := map[protoreflect.Name][2]bool{ // client streams, server streams
		"Generate":        {true, true},
		"GenerateStream":  {false, true},
		"Complete":        {false, false},
		"Tokenize":        {false, false},
		"Detokenize":      {false, false},
		"ListModels":      {false, false},
		"GetServerStatus": {false, false},
		"LoadAdapter":     {false, false},
		"UnloadAdapter":   {false, false},
	}
	methods := service.Methods()
	if methods.Len() != len(want) {
		t.Errorf("GenerationService has %d methods, want %d", methods.Len(), len(want))
	}
	for name, kind := range want {
		m := methods.ByName(name)
		if m == nil {
			t.Errorf("method %s is missing", name)
			continue
		}
		if got := [2]bool{m.IsStreamingClient(), m.IsStreamingServer()}; got != kind {
			t.Errorf("%s streaming (client, server) = %v, want %v", name, got, kind)
		}
	}
}
