package client

import mlxservev1 "mlx-batch-server/clients/go/mlxserve/v1"

// Text is a prompt of raw text, tokenized as is.
func Text(text string) *mlxservev1.Prompt {
	return &mlxservev1.Prompt{Input: &mlxservev1.Prompt_Text{Text: text}}
}

// Chat is a prompt of chat messages, rendered with the model's chat template.
func Chat(messages ...*mlxservev1.ChatMessage) *mlxservev1.Prompt {
	return &mlxservev1.Prompt{Input: &mlxservev1.Prompt_Chat{Chat: &mlxservev1.ChatMessages{Messages: messages}}}
}

// Message is one chat turn, e.g. Message("user", "Hi").
func Message(role, content string) *mlxservev1.ChatMessage {
	return &mlxservev1.ChatMessage{Role: role, Content: content}
}

// Tokens is a prompt of token ids, fed to the model as is.
func Tokens(ids ...int32) *mlxservev1.Prompt {
	return &mlxservev1.Prompt{Input: &mlxservev1.Prompt_Tokens{Tokens: &mlxservev1.TokenIds{Ids: ids}}}
}
