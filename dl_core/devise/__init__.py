"""Lesson 11 DeViSE: word vectors (GloVe 6B 50-d) and their saved compact index (vectors), word expressions such as
`king - man + woman` (query), cosine nearest-neighbour search over many keys (search), the head that regresses
image features onto word vectors with a cosine loss (model), and ConSE zero-shot embeddings (conse)."""
