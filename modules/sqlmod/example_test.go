package sqlmod_test

import (
	"context"
	"fmt"
	"os"

	"github.com/drainfx/drainfx/modules/sqlmod"
)

func ExampleNew() {
	dir, err := os.MkdirTemp("", "sqlmod-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	pool, err := sqlmod.New(sqlmod.Config{DataDir: dir}) // empty DSN: embedded SQLite
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := pool.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	var mode string
	_ = pool.DB().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	fmt.Println(pool.Driver(), mode)
	fmt.Println(pool.Close(ctx))
	// Output:
	// sqlite wal
	// <nil>
}

func ExampleRedactDSN() {
	fmt.Println(sqlmod.RedactDSN("postgres://app:s3cret@db:5432/app?sslmode=require"))
	fmt.Println(sqlmod.RedactDSN("host=db user=app password=s3cret"))
	// Output:
	// postgres://app:xxxxx@db:5432/app?sslmode=require
	// host=db user=app password=xxxxx
}
