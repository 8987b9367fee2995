print("clevervm")
