package main

import "github.com/go-gl/glfw/v3.3/glfw"

// noDepthBuffer asks for windows without a depth or stencil buffer: Fyne
// paints in 2D, with depth testing off and no stencil, and yet GLFW's
// defaults (24-bit depth, 8-bit stencil) give the window a buffer as large
// as its colour buffer (4 MB at 1280×800, in system memory with a software
// or integrated-graphics driver), cleared on every frame. Call it on the
// main goroutine after the app's first window is made (GLFW is set up
// then) and before it is shown (the window's GL surface is made then).
func noDepthBuffer() {
	glfw.WindowHint(glfw.DepthBits, 0)
	glfw.WindowHint(glfw.StencilBits, 0)
}
