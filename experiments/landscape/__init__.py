"""Loss landscapes across initializations: directions, batched evaluation, surfaces, TensorBoard records."""
