package activation

import (
	"context"
	"errors"
	"strconv"
	"strings"

	ole "github.com/go-ole/go-ole"

	"keystation"
)

// DispEException is DISP_E_EXCEPTION: IDispatch::Invoke's code for "the
// method raised an exception"; the real HRESULT is then EXCEPINFO.scode.
const DispEException uint32 = 0x80020009

// FromOLE maps the parts of a failed COM call to an *Error. code is the
// HRESULT Invoke returned (ole.OleError.Code()); scode, wcode and
// description come from its EXCEPINFO (zero / "" when there was none).
//
// The HRESULT is scode when set (a WMI method such as InstallProductKey or
// Activate reports the Software Licensing HRESULT there), otherwise an
// HRESULT named in the description when code is DISP_E_EXCEPTION, otherwise
// code. The description is kept verbatim, trimmed; go-ole's "<nil>"
// placeholder for a missing description counts as none.
func FromOLE(code, scode uint32, wcode uint16, description string) *Error {
	msg := strings.TrimSpace(description)
	if msg == "<nil>" {
		msg = ""
	}
	hr := code
	switch {
	case scode != 0:
		hr = scode
	case code == DispEException || code == 0:
		if v, ok := keystation.ParseHRESULT("", msg); ok {
			hr = v
		} else if wcode != 0 && msg == "" {
			msg = "exception code " + strconv.Itoa(int(wcode))
		}
	}
	return &Error{HRESULT: hr, Message: msg}
}

// FromOLEError maps an error of a go-ole call to an *Error (see FromOLE):
// an *ole.OleError, with the ole.EXCEPINFO go-ole keeps as its sub-error
// when Invoke raised an exception. nil stays nil; an *Error and a context error are
// returned unchanged; any other error becomes an *Error with no HRESULT
// unless its text names one.
func FromOLEError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var oe *ole.OleError
	if errors.As(err, &oe) {
		code := uint32(oe.Code())
		desc := oe.Description()
		var scode uint32
		var wcode uint16
		if ei, ok := excepInfo(oe.SubError()); ok {
			scode, wcode = ei.SCODE(), ei.WCode()
		}
		return FromOLE(code, scode, wcode, desc)
	}
	hr, _ := keystation.ParseHRESULT("", err.Error())
	return &Error{HRESULT: hr, Message: err.Error()}
}

func excepInfo(err error) (ole.EXCEPINFO, bool) {
	switch e := err.(type) {
	case ole.EXCEPINFO:
		return e, true
	case *ole.EXCEPINFO:
		if e != nil {
			return *e, true
		}
	}
	return ole.EXCEPINFO{}, false
}
