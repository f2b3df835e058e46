"""The OpenAI-SDK-shaped surface: ``client.chat.completions.create(...)``.

Code written for the official ``openai`` package switches with one line::

    # client = openai.OpenAI()
    client = multimodel.Client(deployments=[...])
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    print(completion.choices[0].message.content, completion.usage.total_tokens)

The returned objects have the OpenAI field names (``choices[0].message.content``,
``choices[0].delta.content``, ``usage.prompt_tokens`` ...) and are built from the normalized
response, whichever provider answered.
"""

from ._client._async.chat import (
    AsyncChat,
    AsyncChatCompletionStream,
    AsyncCompletions,
    AsyncCompletionsWithRawResponse,
)
from ._client._sync.chat import (
    Chat,
    ChatCompletionStream,
    Completions,
    CompletionsWithRawResponse,
)
from ._client.openai_shapes import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionMessageToolCall,
    ChatCompletionTokenLogprob,
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
    ChoiceLogprobs,
    ChunkChoice,
    CompletionTokensDetails,
    CompletionUsage,
    FunctionCall,
    Model,
    ModelGroups,
    ModelPage,
    PromptTokensDetails,
    RawResponse,
    TopLogprob,
    to_completion,
)

__all__ = [
    "AsyncChat",
    "AsyncChatCompletionStream",
    "AsyncCompletions",
    "AsyncCompletionsWithRawResponse",
    "Chat",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatCompletionMessageToolCall",
    "ChatCompletionStream",
    "ChatCompletionTokenLogprob",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaToolCall",
    "ChoiceDeltaToolCallFunction",
    "ChoiceLogprobs",
    "ChunkChoice",
    "CompletionTokensDetails",
    "CompletionUsage",
    "Completions",
    "CompletionsWithRawResponse",
    "FunctionCall",
    "Model",
    "ModelGroups",
    "ModelPage",
    "PromptTokensDetails",
    "RawResponse",
    "TopLogprob",
    "to_completion",
]
