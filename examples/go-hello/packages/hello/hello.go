package main

import "fmt"

// Main is DigitalOcean's Go convention: the parameters in, the result out.
func Main(args map[string]interface{}) map[string]interface{} {
	name, ok := args["name"].(string)
	if !ok {
		name = "stranger"
	}
	fmt.Println("greeting", name)
	return map[string]interface{}{"body": "Hello " + name + "!"}
}
