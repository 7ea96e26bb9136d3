package activation

// Bridges to unexported pure helpers of the Windows driver, for the
// external tests.

type Product = product

var (
	PickProduct = pickProduct
	ScrubKey    = scrubKey
	Uint32Of    = uint32Of
)
