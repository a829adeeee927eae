// The wire types' public API is made of the runtime's JSON values, and every stage uses its
// deadlines: whoever imports the core gets them too.
@_exported import SluiceRuntime
