/** The error of a model that cannot be built as given: a bad spec, or a module file that does not define a usable model. */

export class ModelSpecError extends Error {}
