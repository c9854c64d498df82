/**
 * `meshgrad/data`: the Dataset interface the trainers consume, an in-memory dataset over the
 * caller's arrays, the bundled loaders (Fashion-MNIST, Moby-Dick, and openDataset by name),
 * subsets and splits, and BatchSampler (seeded per-epoch batch orders).
 */

export type { Batch, BatchBuffers, Dataset, DatasetTask } from '../shared/data/dataset.js';
export { ImageClassificationDataset, SubsetDataset, firstSamples, trainValSplit, sampleSizeOf, ensureBatchBuffers, type ImageClassificationDatasetInit } from '../shared/data/dataset.js';
export { InMemoryDataset, datasetFromArrays, type InMemoryDatasetInit } from '../shared/data/in-memory.js';
export { BatchSampler, epochPermutation, type BatchSamplerOptions } from '../shared/data/sampler.js';
export { openDataset, knownDatasets, describeDataset, type OpenDatasetOptions, type OpenedDataset, type DatasetDescription } from '../shared/data/registry.js';
export { loadFashionMnist, FASHION_MNIST_CLASSES } from '../shared/data/fashion-mnist.js';
export { loadMobyDick } from '../shared/data/moby-dick.js';
