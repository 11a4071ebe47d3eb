"""Neural-network building blocks: encoders (:mod:`pipeline.embed.nn.encoders`) and seeded index samplers
(:mod:`pipeline.embed.nn.sampling`) for NER and the CEBRA baseline."""
