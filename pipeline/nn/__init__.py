"""Neural-network building blocks: encoders (:mod:`pipeline.nn.encoders`) and seeded index samplers
(:mod:`pipeline.nn.sampling`) for NER and the CEBRA baseline."""
