// Package swaggerui holds the browser test of the Swagger UI that sockman
// serves at /swagger/index.html: driven by chromedp and Debian's chromium, it
// does what a user does on that page (Try it out, fill in, Execute) to open a
// server and a client, send a message from one socket, read it on the other
// and close everything, and checks the answers the page shows.
//
// The test skips when no chromium is installed, unless SOCKMAN_REQUIRE_BROWSER
// is set (.ci/run sets it), and then it fails. The package has no code of
// its own.
package swaggerui
