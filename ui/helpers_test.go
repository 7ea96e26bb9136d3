package ui_test

import "keystation"

func keystationClassify(code string) string { return keystation.ClassifyFailure(code, "").Hint }
