module modelwatch.local/pause

go 1.22
