import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import type * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";

/**
 * Serves `grpc.reflection.v1` and `v1alpha` from the generated descriptors of
 * the mounted services (with every file they import) and `grpc.health.v1`, so
 * grpcurl and `buf curl` need no .proto files.
 */
export function addReflection(server: grpc.Server, files: readonly DescFile[], serviceNames: readonly string[]): void {
  const encoded = new Map<string, Buffer>();
  const visit = (file: DescFile) => {
    if (encoded.has(file.name)) return;
    for (const dependency of file.dependencies) visit(dependency);
    encoded.set(file.name, Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
  };
  files.forEach(visit);
  // @grpc/reflection reads `fileDescriptorProtos` from every value of a
  // proto-loader package definition; this object has that one shape.
  const definition = { "annals.descriptors": { fileDescriptorProtos: [...encoded.values()] } };
  const reflection = new ReflectionService(definition as unknown as protoLoader.PackageDefinition, {
    services: [...serviceNames, "grpc.health.v1.Health"],
  });
  reflection.addToServer(server);
}
